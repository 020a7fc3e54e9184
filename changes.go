package tokencache

// ChangeWatcher is implemented by stores that tell every process sharing
// them which tokens were saved or deleted, so that an in-process cache can
// drop what it holds for them (refresher.WithLocalCache uses it). Find it
// with a type assertion.
type ChangeWatcher interface {
	// WatchChanges reports changes to h until stop is called. It returns at
	// once; h.Watching(true) tells when reports begin. stop waits until h
	// is called no more, and is safe to call more than once.
	WatchChanges(h ChangeHandler) (stop func() error)
}

// ChangeHandler receives what a ChangeWatcher reports. Its methods are
// called from one goroutine, one at a time, and must not block.
type ChangeHandler interface {
	// Changed is called after the token with this ID was saved or deleted.
	Changed(id string)
	// ChangedAll is called when every token may have changed (DeleteTokens).
	ChangedAll()
	// Watching(true) is called once every later change will be reported;
	// Watching(false) when changes may be missed from now on (a lost
	// connection), until the next Watching(true). A handler starts out not
	// watching.
	Watching(ok bool)
}
