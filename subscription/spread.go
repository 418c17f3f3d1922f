package subscription

import (
	"encoding/binary"
	"slices"
	"time"
)

// FairShare is the most partitions any one of workers live workers holds:
// ceil(partitions / workers), all of them for one worker or fewer. Under
// Owners every live worker holds FairShare or FairShare-1 partitions
// (exactly partitions / workers when that divides).
func FairShare(partitions, workers int) int {
	if workers <= 1 {
		return partitions
	}
	return (partitions + workers - 1) / workers
}

// Owners returns, for each partition 0..partitions-1, the worker that
// should hold it when workers are the live workers of the key (in any
// order; duplicates are ignored). It is the rule every worker of a
// partitioned subscription applies to the live list it reads from the
// store, so that workers with the same list agree without talking:
//
//   - Balanced: each worker is given floor(partitions/W) or
//     ceil(partitions/W) partitions, W being the number of distinct
//     workers, and exactly partitions mod W of them get the ceil.
//   - Stable: it is a rendezvous (highest random weight) assignment with
//     bounded load. Every (partition, worker) pair has a weight, a hash of
//     both; pairs are taken by decreasing weight and a partition goes to
//     the first worker of its pairs that still has room. A worker joining
//     or leaving changes the ranking of no other pair, so few partitions
//     besides those the joiner takes (or the leaver frees) move.
//
// The weights are fixed forever (64-bit FNV-1a of the worker id and the
// partition number, then a SplitMix64 finaliser): every version of this
// package assigns alike, so workers of different versions on one key do
// not fight over partitions. With no worker the result is all "".
func Owners(partitions int, workers []string) []string {
	out := make([]string, max(partitions, 0))
	ws := slices.Clone(workers)
	slices.Sort(ws)
	ws = slices.Compact(ws)
	if len(ws) > 0 && ws[0] == "" {
		ws = ws[1:]
	}
	if partitions <= 0 || len(ws) == 0 {
		return out
	}
	if len(ws) == 1 {
		for p := range out {
			out[p] = ws[0]
		}
		return out
	}
	type pair struct {
		weight uint64
		worker int
		part   int
	}
	pairs := make([]pair, 0, partitions*len(ws))
	for wi, w := range ws {
		h := fnv64(fnvOffset64, w)
		for p := range partitions {
			pairs = append(pairs, pair{spreadWeight(h, uint32(p)), wi, p})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		switch {
		case a.weight != b.weight:
			if a.weight > b.weight {
				return -1
			}
			return 1
		case a.worker != b.worker:
			return a.worker - b.worker
		default:
			return a.part - b.part
		}
	})
	floor := partitions / len(ws)
	ceils := partitions % len(ws) // workers that may still take floor+1
	count := make([]int, len(ws))
	left := partitions
	for _, pr := range pairs {
		if out[pr.part] != "" {
			continue
		}
		switch c := count[pr.worker]; {
		case c < floor:
		case c == floor && ceils > 0:
			ceils--
		default:
			continue
		}
		count[pr.worker]++
		out[pr.part] = ws[pr.worker]
		if left--; left == 0 {
			break
		}
	}
	return out
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnv64(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// spreadWeight is the rendezvous weight of a partition for a worker whose
// id hashed (FNV-1a 64, then a zero separator byte) to h.
func spreadWeight(h uint64, part uint32) uint64 {
	var b [5]byte // the separator, then the partition big-endian
	binary.BigEndian.PutUint32(b[1:], part)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	// SplitMix64's finaliser: FNV's low bits mix poorly on short inputs.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// spreadView is a worker's view of its key's live workers, from its last
// successful announcement, and what the spread rule makes of it.
type spreadView struct {
	self   string
	live   []string             // sorted and distinct, self included
	seen   map[string]time.Time // when this worker first saw each live worker (monotonic clock)
	owners []string             // Owners(partitions, live)
	mine   []uint32             // the partitions owners gives self, ascending
}

// update sets the view from a live list (nil: self alone) read at now.
func (v *spreadView) update(self string, partitions int, live []string, now time.Time) {
	live = append(slices.Clone(live), self)
	slices.Sort(live)
	live = slices.Compact(live)
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	for _, w := range live {
		if _, ok := v.seen[w]; !ok {
			v.seen[w] = now
		}
	}
	for w := range v.seen {
		if _, ok := slices.BinarySearch(live, w); !ok {
			delete(v.seen, w) // seen again later counts from then
		}
	}
	if v.owners != nil && v.self == self && slices.Equal(v.live, live) {
		return
	}
	v.self, v.live = self, live
	v.owners = Owners(max(partitions, 1), live)
	v.mine = v.mine[:0]
	for p, o := range v.owners {
		if o == self {
			v.mine = append(v.mine, uint32(p))
		}
	}
}

// owns reports whether the view gives partition p to this worker.
func (v *spreadView) owns(p uint32) bool {
	return int(p) < len(v.owners) && v.owners[p] == v.self
}

// settled reports whether worker has been live in this view for a full
// claim interval: long enough for every live worker to have announced
// since it appeared, so that they all see it and agree on its partitions.
func (v *spreadView) settled(worker string, now time.Time, interval time.Duration) bool {
	at, ok := v.seen[worker]
	return ok && now.Sub(at) >= interval
}

// limit is how many partitions this worker may hold: its fair share under
// the view, and at most maxClaims when positive.
func (v *spreadView) limit(maxClaims int) int {
	n := FairShare(len(v.owners), len(v.live))
	if maxClaims > 0 {
		n = min(n, maxClaims)
	}
	return n
}
