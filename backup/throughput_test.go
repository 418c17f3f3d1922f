package backup_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/evento-go/evento/backup"
)

// TestThroughput measures Backup, Verify and Restore of a 100,000-event
// store per backend, in MB/s of store files and events/s. It runs only
// with EVENTO_BACKUP_BENCH=1:
//
//	EVENTO_BACKUP_BENCH=1 go test ./backup -run TestThroughput -v -timeout 30m
func TestThroughput(t *testing.T) {
	if os.Getenv("EVENTO_BACKUP_BENCH") != "1" {
		t.Skip("set EVENTO_BACKUP_BENCH=1 to measure backup/restore throughput")
	}
	const n = 100_000
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			x := open(t, dsnFor(b, t.TempDir()))
			fill(t, x, n)
			var buf bytes.Buffer
			start := time.Now()
			m, err := backup.Backup(t.Context(), x, &buf, backup.Options{TempDir: t.TempDir()})
			bd := time.Since(start)
			if err != nil || m.Events != n {
				t.Fatalf("Backup = %d events, %v", m.Events, err)
			}
			start = time.Now()
			if _, err := backup.Verify(t.Context(), bytes.NewReader(buf.Bytes()), t.TempDir()); err != nil {
				t.Fatal(err)
			}
			vd := time.Since(start)
			start = time.Now()
			if _, err := backup.Restore(t.Context(), bytes.NewReader(buf.Bytes()), dsnFor(b, t.TempDir())); err != nil {
				t.Fatal(err)
			}
			rd := time.Since(start)
			size := float64(m.Bytes()) / 1e6
			for _, s := range []struct {
				what string
				d    time.Duration
			}{{"backup", bd}, {"verify", vd}, {"restore", rd}} {
				t.Logf("%s: %s of %d events, %.1f MB of files (archive %.1f MB): %.2fs, %.1f MB/s, %.0f events/s",
					b, s.what, n, size, float64(buf.Len())/1e6, s.d.Seconds(), size/s.d.Seconds(), n/s.d.Seconds())
			}
		})
	}
}
