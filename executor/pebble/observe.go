package pebble

// CommitObserver is called by the committer goroutine after every group
// commit with the number of Write (or Import) calls the commit gathered and
// the number of events it wrote. It must return quickly: the next group
// waits for it.
type CommitObserver func(writes, events int)

// ObserveCommits sets f to be called after every successful group commit
// (see Store.Write), replacing the observer set before; nil removes it.
// Instrumentation (otelevento) records group-commit batch sizes with it.
// It is safe to call at any time.
func (s *Store) ObserveCommits(f func(writes, events int)) {
	if f == nil {
		s.commitObs.Store(nil)
		return
	}
	obs := CommitObserver(f)
	s.commitObs.Store(&obs)
}

// observeCommit reports a committed group to the observer, if any.
func (s *Store) observeCommit(writes, events int) {
	if f := s.commitObs.Load(); f != nil {
		(*f)(writes, events)
	}
}
