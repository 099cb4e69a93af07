package engine

// Placement: which connection a new flow opens on
// (docs/parallel-sessions.md §4.4). A flow cannot move once open, so the
// choice is made for what may come: an interactive flow (a database
// connection between queries, a shell) must not land behind a bulk
// transfer, and a new flow, which may be a download, should not land
// beside one. place is a pure function of a snapshot, table-tested.

import "cmp"

// connView is what placement knows of an up connection.
type connView struct {
	id       int
	open     int // flows open, and being opened
	active   int // open flows that moved a byte within activeWithin
	bulk     int // bulk and rising flows, plus one while the connection is in bulkHold
	unproven int // flows whose class is not known yet
}

// clean reports whether v carries nothing a new flow would wait behind,
// now or soon.
func (v connView) clean() bool { return v.bulk == 0 && v.unproven == 0 }

// cost orders connections when none is clean and neither carries bulk
// (costLess).
func (v connView) cost() int { return 8*v.bulk + 2*v.unproven + v.active }

// costLess orders connections when none is clean: one without a bulk or
// rising flow first, however many unproven flows it has (they may be
// downloads; a bulk flow is one), then the least cost, then the fewest
// open.
func costLess(a, b connView) bool {
	if (a.bulk == 0) != (b.bulk == 0) {
		return a.bulk == 0
	}
	return cmp.Or(cmp.Compare(a.cost(), b.cost()), cmp.Compare(a.open, b.open)) < 0
}

// placeView is the pool as placement sees it.
type placeView struct {
	conns     []connView // the up connections, in dial order
	unclaimed int        // extra dials in progress that no flow waits for
	claimed   int        // extra dials in progress that flows wait for
	total     int        // connections, up, resuming or being dialed
	max       int
	noDial    bool // backing off, extra dials stopped, or this flow waited already
}

// decision is what place decided.
type decision int

const (
	placeWait  decision = iota // no connection up: wait for one (serve's)
	placeUse                   // open on the connection at index
	placeJoin                  // wait for an extra dial in progress
	placeDial                  // start an extra dial and wait for it
	placeShare                 // wait for an extra dial other flows wait for
)

// place decides where a new flow goes:
//
//  1. a clean connection with no open flow, the lowest id;
//  2. a clean connection: the fewest active flows, then the fewest open,
//     then the lowest id;
//  3. none clean: wait for an extra dial in progress that no other flow
//     claimed, or start one below max, or at max share one that others
//     wait for (a burst of new flows, 16 pgbench clients, spreads over
//     the new connections rather than piling on the first), unless dials
//     are not to be waited for;
//  4. one without a bulk or rising flow, then the least cost
//     (connView.cost), then the fewest open, then the lowest id
//     (costLess).
func place(v placeView) (d decision, index int) {
	if len(v.conns) == 0 {
		return placeWait, -1
	}
	best := -1
	for i, c := range v.conns {
		if !c.clean() {
			continue
		}
		if best < 0 || cleanLess(c, v.conns[best]) {
			best = i
		}
	}
	if best >= 0 {
		return placeUse, best
	}
	if !v.noDial {
		if v.unclaimed > 0 {
			return placeJoin, -1
		}
		if v.total < v.max {
			return placeDial, -1
		}
		if v.claimed > 0 {
			return placeShare, -1
		}
	}
	best = 0
	for i, c := range v.conns[1:] {
		if costLess(c, v.conns[best]) {
			best = i + 1
		}
	}
	return placeUse, best
}

// cleanLess orders clean connections: empty first, then by fewest active
// and fewest open flows; ties keep dial order.
func cleanLess(a, b connView) bool {
	if (a.open == 0) != (b.open == 0) {
		return a.open == 0
	}
	return cmp.Or(cmp.Compare(a.active, b.active), cmp.Compare(a.open, b.open)) < 0
}
