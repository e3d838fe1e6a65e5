// Package delivery is the paging half of Picket's resilience suite (issue 6, items 1
// and 2): the daemon delivers every page exactly once through a misbehaving Events
// API receiver and falls back when the receiver stays down, and a daemon killed with
// SIGKILL over and over loses no page, repeats one only where the kill fell between
// the receiver's acceptance and the outbox's delete, and never corrupts its bbolt file.
//
// The package holds tests only. They run when PICKET_RESILIENCE=1 (make resilience)
// and are skipped otherwise; together they take under three minutes on two cores.
package delivery
