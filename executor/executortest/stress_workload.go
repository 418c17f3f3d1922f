package executortest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evento-go/evento"
)

// The stress workload: what one writer (a goroutine of this process or of a
// child process) commits. Both sides build their batches with stressWriter,
// so the parent's model and the children's acknowledgements describe the
// same kinds of events.

// Aggregate types of the stress workload.
const (
	stressA = "stress/A"
	stressB = "stress/B"
	stressC = "stress/C"
)

var (
	stressTypes = []string{stressA, stressB, stressC}
	stressKeys  = []string{"k1", "k2", ""}
	stressNames = []string{"N1", "N2", "N3"}
)

// stressAgg is one aggregate and the routing key it was created with (its
// first event's key, fixed for its life).
type stressAgg struct {
	typ, id, key string
	version      uint64 // the writer's own aggregates only
}

// stressHot are the aggregates every writer of every process appends to,
// racing on their versions (the losers re-read the version and retry).
var stressHot = []stressAgg{
	{typ: stressA, id: "hot-k1", key: "k1"},
	{typ: stressA, id: "hot-none", key: ""},
	{typ: stressB, id: "hot-b", key: "k2"},
}

// stressOwn is how many aggregates each writer owns alone.
const stressOwn = 6

// stressCommit is one acknowledged Write: its batch as Write returned it and
// the call's interval (on this process's monotonic clock; zero for a
// child's commits).
type stressCommit struct {
	writer     string
	exec       int
	start, end time.Time
	batch      []evento.Event
}

// stressWriter commits the workload of one writer.
type stressWriter struct {
	name string // unique across processes: "w3", "p1g2"
	idx  int    // varies the mix between writers
	exec int    // index of x among the test's executors
	x    evento.Executor
	own  []stressAgg
	// conflicts counts lost races on hot aggregates (retried).
	conflicts int
}

func newStressWriter(name string, idx, exec int, x evento.Executor) *stressWriter {
	w := &stressWriter{name: name, idx: idx, exec: exec, x: x}
	for j := range stressOwn {
		w.own = append(w.own, stressAgg{
			typ: stressTypes[j%len(stressTypes)],
			id:  fmt.Sprintf("%s-%d", name, j),
			key: stressKeys[(j+idx)%len(stressKeys)],
		})
	}
	return w
}

// event appends the next event of an aggregate the writer owns.
func (w *stressWriter) next(a *stressAgg, c, k int) evento.Event {
	a.version++
	e := ev(a.typ, a.id, a.version, stressNames[(c+k+w.idx)%len(stressNames)])
	e.RoutingKey = a.key
	return e
}

// commit writes commit number c of the writer: 1 to 3 events over one or
// two of its own aggregates, and every fifth commit a batch that appends
// to a hot aggregate and to one of its own (retried on a lost race; the
// whole batch fails on a conflict, so the own aggregate's version is only
// advanced on success). It returns the committed batch.
func (w *stressWriter) commit(ctx context.Context, c int) (stressCommit, error) {
	if c%5 == 4 {
		return w.commitHot(ctx, c)
	}
	n := 1 + (c*7+w.idx)%3
	a1 := &w.own[c%len(w.own)]
	a2 := &w.own[(c+1+w.idx)%len(w.own)]
	batch := make([]evento.Event, 0, n)
	for k := range n {
		if k == n-1 && n > 1 && c%2 == 1 {
			batch = append(batch, w.next(a2, c, k))
		} else {
			batch = append(batch, w.next(a1, c, k))
		}
	}
	start := time.Now()
	if err := w.x.Write(ctx, batch); err != nil {
		return stressCommit{}, fmt.Errorf("writer %s commit %d: Write(%s) = %w, want success", w.name, c, describeBatch(batch), err)
	}
	return stressCommit{writer: w.name, exec: w.exec, start: start, end: time.Now(), batch: batch}, nil
}

func (w *stressWriter) commitHot(ctx context.Context, c int) (stressCommit, error) {
	hot := stressHot[(c/5+w.idx)%len(stressHot)]
	own := &w.own[(c+w.idx)%len(w.own)]
	for attempt := 0; ; attempt++ {
		if attempt == 10000 {
			return stressCommit{}, fmt.Errorf("writer %s commit %d: lost the race for %s/%s %d times in a row", w.name, c, hot.typ, hot.id, attempt)
		}
		v, err := w.x.AggregateVersion(ctx, hot.typ, hot.id)
		if err != nil {
			return stressCommit{}, fmt.Errorf("writer %s commit %d: AggregateVersion(%s, %s) = %w", w.name, c, hot.typ, hot.id, err)
		}
		var batch []evento.Event
		for k := range 1 + c%2 {
			e := ev(hot.typ, hot.id, v+uint64(k)+1, stressNames[(c+k)%len(stressNames)])
			e.RoutingKey = hot.key
			batch = append(batch, e)
		}
		saved := own.version
		batch = append(batch, w.next(own, c, 2))
		start := time.Now()
		err = w.x.Write(ctx, batch)
		if err == nil {
			return stressCommit{writer: w.name, exec: w.exec, start: start, end: time.Now(), batch: batch}, nil
		}
		own.version = saved
		var ce *evento.VersionConflictError
		if errors.As(err, &ce) && ce.AggregateType == hot.typ && ce.AggregateID == hot.id {
			w.conflicts++
			continue
		}
		return stressCommit{}, fmt.Errorf("writer %s commit %d: Write(%s) = %w, want success or a version conflict on %s/%s", w.name, c, describeBatch(batch), err, hot.typ, hot.id)
	}
}
