package alert

import (
	"fmt"

	"github.com/picket-dev/picket/alert/notify"
)

// PagingOptions are an engine's and its outbox's options; NewPaging wires the two to
// each other.
type PagingOptions struct {
	Engine EngineOptions // its Outbox is the one NewPaging makes
	// Outbox: its OnResult and OnDrop hear of each attempt and drop after the engine has
	// put it on the incident's timeline (in a fleet a page's record must be there before
	// it is confirmed); its Obsolete, when set (a fleet), is asked before the engine's
	// Superseded.
	Outbox notify.OutboxOptions
	// Queue is how the engine reaches the outbox; nil: directly (the simulator records
	// what is queued on the way).
	Queue func(*notify.Outbox) Enqueuer
}

// NewPaging builds the outbox (loading what a previous run left queued) and the engine
// (restoring states and incidents) on one store, each told of the other: the one way
// `picket run`, `picket check --page` and the simulator build them. The outbox sends
// nothing before Run, Flush or Step, so no hook runs before the engine exists.
func NewPaging(o PagingOptions) (*Engine, *notify.Outbox, error) {
	var engine *Engine
	onResult, onDrop, obsolete := o.Outbox.OnResult, o.Outbox.OnDrop, o.Outbox.Obsolete
	o.Outbox.OnResult = func(r notify.AttemptResult) {
		if engine != nil {
			engine.NoteDelivery(r)
		}
		if onResult != nil {
			onResult(r)
		}
	}
	o.Outbox.OnDrop = func(d notify.Dropped) {
		if engine != nil {
			engine.NoteDrop(d)
		}
		if onDrop != nil {
			onDrop(d)
		}
	}
	if obsolete != nil { // only a fleet shares its keys with other senders
		o.Outbox.Obsolete = func(n notify.Notification) string {
			if why := obsolete(n); why != "" || engine == nil {
				return why
			}
			return engine.Superseded(n)
		}
	}
	ob, err := notify.NewOutbox(o.Outbox)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: %w", err)
	}
	o.Engine.Outbox = ob
	if o.Queue != nil {
		o.Engine.Outbox = o.Queue(ob)
	}
	e, err := NewEngine(o.Engine)
	if err != nil {
		return nil, nil, fmt.Errorf("alert state: %w", err)
	}
	engine = e
	return e, ob, nil
}
