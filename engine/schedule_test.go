package engine

import (
	"testing"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

func TestPlace(t *testing.T) {
	vpctest.LeakCheck(t)
	empty := func(id int) connView { return connView{id: id} }
	quiet := func(id, open int) connView { return connView{id: id, open: open} }
	busy := func(id, open, active int) connView { return connView{id: id, open: open, active: active} }
	bulk := func(id, n, open int) connView { return connView{id: id, open: open, active: open, bulk: n} }
	unproven := func(id, n int) connView { return connView{id: id, open: n, active: n, unproven: n} }
	for _, tt := range []struct {
		name  string
		v     placeView
		d     decision
		index int
	}{
		{"no connection", placeView{max: 5}, placeWait, -1},
		{"one clean", placeView{conns: []connView{busy(1, 3, 1)}, total: 1, max: 5}, placeUse, 0},
		{"one connection, at max", placeView{conns: []connView{bulk(1, 1, 1)}, total: 1, max: 1}, placeUse, 0},
		{"bulk and clean", placeView{conns: []connView{bulk(1, 1, 1), busy(2, 2, 2)}, total: 2, max: 5}, placeUse, 1},
		{"an empty one first", placeView{conns: []connView{busy(1, 1, 0), empty(2)}, total: 2, max: 5}, placeUse, 1},
		{"empty ones: lowest id", placeView{conns: []connView{bulk(1, 1, 1), empty(2), empty(3)}, total: 3, max: 5}, placeUse, 1},
		{"packing quiet flows: fewest active", placeView{conns: []connView{busy(1, 2, 1), quiet(2, 5)}, total: 2, max: 5}, placeUse, 1},
		{"then fewest open", placeView{conns: []connView{quiet(1, 5), quiet(2, 3)}, total: 2, max: 5}, placeUse, 1},
		{"all bulk below max: dial", placeView{conns: []connView{bulk(1, 1, 1), bulk(2, 1, 1)}, total: 2, max: 5}, placeDial, -1},
		{"a dial nobody waits for: join", placeView{conns: []connView{bulk(1, 1, 1)}, unclaimed: 1, total: 2, max: 2}, placeJoin, -1},
		{"all bulk at max: least cost", placeView{conns: []connView{bulk(1, 2, 2), bulk(2, 1, 3), bulk(3, 1, 1)}, total: 3, max: 3}, placeUse, 2},
		{"a burst at max: share a dial others wait for", placeView{conns: []connView{unproven(1, 1)}, claimed: 4, total: 5, max: 5}, placeShare, -1},
		{"a burst at max, waited already: least cost", placeView{conns: []connView{unproven(1, 1)}, claimed: 4, total: 5, max: 5, noDial: true}, placeUse, 0},
		{"dialing counts toward max", placeView{conns: []connView{bulk(1, 1, 1)}, total: 2, max: 2}, placeUse, 0},
		{"throttled: no wait", placeView{conns: []connView{bulk(1, 1, 1), unproven(2, 1)}, total: 2, max: 5, noDial: true}, placeUse, 1},
		{"unproven burst: dial", placeView{conns: []connView{unproven(1, 3)}, total: 1, max: 5}, placeDial, -1},
		{"unproven costs less than bulk", placeView{conns: []connView{bulk(1, 1, 1), unproven(2, 2)}, total: 2, max: 2}, placeUse, 1},
		{"many unproven before one bulk", placeView{conns: []connView{bulk(1, 1, 1), unproven(2, 6)}, total: 2, max: 2}, placeUse, 1},
		{"a dial outlasted: many unproven before a rising one", placeView{conns: []connView{bulk(1, 1, 2), unproven(2, 5)}, total: 3, max: 5, noDial: true}, placeUse, 1},
		{"all bulk: unproven flows still cost", placeView{conns: []connView{bulk(1, 2, 2), {id: 2, open: 8, active: 8, bulk: 1, unproven: 6}}, total: 2, max: 2}, placeUse, 0},
		{"ties: fewest open, then lowest id", placeView{conns: []connView{bulk(1, 1, 3), bulk(2, 1, 1), bulk(3, 1, 1)}, total: 3, max: 3}, placeUse, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, i := place(tt.v)
			if d != tt.d || i != tt.index {
				t.Errorf("place = %v, %d; want %v, %d", d, i, tt.d, tt.index)
			}
		})
	}
}
