package transfer_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/evento-go/evento"
	"github.com/evento-go/evento/transfer"
)

// TestThroughput measures export and import of 100,000 events per backend
// against baselines measured in the same run: paging the same events with
// Read (export's floor) and writing them with Write in batches of the same
// size (import's floor). It runs only with EVENTO_TRANSFER_BENCH=1:
//
//	EVENTO_TRANSFER_BENCH=1 go test ./transfer -run TestThroughput -v -timeout 30m
func TestThroughput(t *testing.T) {
	if os.Getenv("EVENTO_TRANSFER_BENCH") != "1" {
		t.Skip("set EVENTO_TRANSFER_BENCH=1 to measure export/import throughput")
	}
	const n = 100_000
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			src := openBackend(t, b)
			fill(t, src, n)

			start := time.Now()
			read := readAll(t, src)
			readD := time.Since(start)

			start = time.Now()
			data, res := export(t, src, transfer.ExportOptions{})
			exportD := time.Since(start)

			// Baseline: Write the same events (fresh IDs) in batches of
			// 500, as Import commits them.
			base := openBackend(t, b)
			batch := make([]evento.Event, 0, 500)
			start = time.Now()
			for i := range read {
				e := read[i]
				e.ID, e.Timestamp, e.Position = [16]byte{}, time.Time{}, evento.Position{}
				if len(batch) > 0 && (len(batch) == 500 || batch[len(batch)-1].AggregateID == e.AggregateID && batch[len(batch)-1].AggregateType != e.AggregateType || hasOtherType(batch, &e)) {
					if err := base.Write(ctx, batch); err != nil {
						t.Fatal(err)
					}
					batch = batch[:0]
				}
				batch = append(batch, e)
			}
			if err := base.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			writeD := time.Since(start)

			dst := openBackend(t, b)
			start = time.Now()
			ires, err := transfer.Import(ctx, dst, bytes.NewReader(data), transfer.ImportOptions{})
			importD := time.Since(start)
			if err != nil || ires.Events != n {
				t.Fatalf("Import = %+v, %v", ires, err)
			}
			mbs := float64(res.Bytes) / 1e6
			t.Logf("%s: %d events, export file %.1f MB", b, n, mbs)
			t.Logf("%s: export %.2fs: %.0f events/s, %.1f MB/s; baseline Read %.2fs (%.0f events/s); export/read time ratio %.2f",
				b, exportD.Seconds(), n/exportD.Seconds(), mbs/exportD.Seconds(), readD.Seconds(), n/readD.Seconds(), exportD.Seconds()/readD.Seconds())
			t.Logf("%s: import %.2fs: %.0f events/s, %.1f MB/s; baseline Write %.2fs (%.0f events/s); import/write time ratio %.2f",
				b, importD.Seconds(), n/importD.Seconds(), mbs/importD.Seconds(), writeD.Seconds(), n/writeD.Seconds(), importD.Seconds()/writeD.Seconds())
		})
	}
}

// hasOtherType reports whether batch holds e's aggregate id under another
// type (ValidateBatch refuses that).
func hasOtherType(batch []evento.Event, e *evento.Event) bool {
	for i := range batch {
		if batch[i].AggregateID == e.AggregateID && batch[i].AggregateType != e.AggregateType {
			return true
		}
	}
	return false
}
