package platform

// The IPv4 routing table of macOS, read and changed with the messages of
// rtmsg.go. The requests are those route(8) writes for
//
//	route -n add    -net 10.0.0.0/16 -interface utun5    (a /32: -host)
//	route -n delete -net 10.0.0.0/16 -interface utun5
//	route -n get    10.1.2.3
//
// and the table is read as netstat -rn reads it, from the NET_RT_DUMP
// sysctl. The socket is a seam: platform_darwin.go supplies PF_ROUTE, the
// tests a fake kernel.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
)

// routeSocket is how an rtTable reaches the kernel.
type routeSocket interface {
	// send writes one request. The kernel refuses a change with the errno
	// of the write.
	send(req []byte) error
	// get writes an RTM_GET request and returns the kernel's reply to it,
	// or the errno of the write.
	get(req []byte) (rtMsg, error)
	// dump returns the IPv4 routing table as NET_RT_DUMP messages.
	dump() ([]byte, error)
}

// rtTable is the routing table through a routeSocket. Its methods are safe
// for concurrent use.
type rtTable struct {
	sock    routeSocket
	ifIndex func(name string) (int, error) // wraps ErrLinkNotFound when there is none
	ifName  func(index int) string         // "" when there is none
	seq     atomic.Int32
}

func (t *rtTable) nextSeq() int32 { return t.seq.Add(1) }

// add installs r: bound to r.Dev (a route on the link), or via r.Gateway.
// An existing route to r.Dst is not replaced: xnu answers EEXIST.
func (t *rtTable) add(r Route) error {
	op := "add route " + r.String()
	index, err := t.linkIndex(r)
	if err != nil {
		return rtErr(op, err)
	}
	m := t.change(rtmAdd, r, index)
	err = t.sock.send(m.marshal())
	if errors.Is(err, errnoEEXIST) {
		return fmt.Errorf("platform: %s: %w", op, ErrRouteExists)
	}
	if err != nil {
		return rtErr(op, err)
	}
	return nil
}

// delete removes r. A delete names only a destination, so it first asks
// for the route there and leaves it alone unless it is r (same link, same
// next hop): another program's route that took its place stays. A route
// or link that is gone is not an error.
func (t *rtTable) delete(r Route) error {
	op := "delete route " + r.String()
	index, err := t.linkIndex(r)
	if errors.Is(err, ErrLinkNotFound) {
		return nil // the link took its routes with it
	}
	if err != nil {
		return rtErr(op, err)
	}
	cur, err := t.query(t.exactQuery(r))
	if isNoRouteErr(err) {
		return nil
	}
	if err != nil {
		return rtErr(op, err)
	}
	if !cur.is(r, index) {
		return nil
	}
	m := t.change(rtmDelete, r, index)
	err = t.sock.send(m.marshal())
	if err != nil && !errors.Is(err, errnoESRCH) {
		return rtErr(op, err)
	}
	return nil
}

// linkIndex checks r and returns the index of its interface, 0 for a route
// via a gateway.
func (t *rtTable) linkIndex(r Route) (int, error) {
	if err := checkRtRoute(r); err != nil {
		return 0, err
	}
	if r.Gateway.IsValid() {
		return 0, nil
	}
	return t.ifIndex(r.Dev)
}

// change is the RTM_ADD or RTM_DELETE message of r, on interface index
// unless r has a gateway.
func (t *rtTable) change(typ uint8, r Route, index int) rtMsg {
	m := rtMsg{typ: typ, flags: rtfUp | rtfStatic, seq: t.nextSeq()}
	m.set(rtaxDst, inetAddr(r.Dst.Masked().Addr()))
	if r.Gateway.IsValid() {
		m.flags |= rtfGateway
		m.set(rtaxGateway, inetAddr(r.Gateway))
	} else {
		m.set(rtaxGateway, linkAddr(index, ""))
	}
	if r.Dst.Bits() == 32 {
		m.flags |= rtfHost
	} else {
		m.set(rtaxNetmask, maskAddr(r.Dst.Bits()))
	}
	return m
}

// checkRtRoute checks that r is an IPv4 route on a link or via a gateway.
func checkRtRoute(r Route) error {
	switch {
	case !r.Dst.IsValid() || !r.Dst.Addr().Is4():
		return errors.New("not an IPv4 destination")
	case r.Gateway.IsValid() && !r.Gateway.Is4():
		return errors.New("not an IPv4 gateway")
	case !r.Gateway.IsValid() && r.Dev == "":
		return errors.New("neither an interface nor a gateway")
	}
	return nil
}

// exactQuery asks for the route to exactly r.Dst (route -n get -net).
func (t *rtTable) exactQuery(r Route) rtMsg {
	m := rtMsg{typ: rtmGet, flags: rtfUp | rtfGateway | rtfStatic, seq: t.nextSeq()}
	m.set(rtaxDst, inetAddr(r.Dst.Masked().Addr()))
	if r.Dst.Bits() == 32 {
		m.flags |= rtfHost
	} else {
		m.set(rtaxNetmask, maskAddr(r.Dst.Bits()))
	}
	m.set(rtaxIFP, linkAddr(0, ""))
	return m
}

// is reports whether reply m describes route r on interface index: the
// same destination and next hop, and for a route on a link, that link.
func (m *rtMsg) is(r Route, index int) bool {
	dst, ok := m.dst()
	if !ok || dst != r.Dst.Masked() || m.gateway() != r.Gateway {
		return false
	}
	return r.Gateway.IsValid() || int(m.index) == index
}

// query writes an RTM_GET and returns the reply, with a failure the reply
// reports as the error.
func (t *rtTable) query(m rtMsg) (rtMsg, error) {
	rep, err := t.sock.get(m.marshal())
	if err == nil && rep.errno != 0 {
		err = syscall.Errno(rep.errno)
	}
	return rep, err
}

// isNoRouteErr reports whether err is how xnu says it has no route.
func isNoRouteErr(err error) bool {
	return errors.Is(err, errnoESRCH) || errors.Is(err, errnoENETUNREACH) || errors.Is(err, errnoEHOSTUNREACH)
}

// routeFor asks the kernel which route it takes to dst (route -n get).
func (t *rtTable) routeFor(dst netip.Addr) (Route, error) {
	op := "find route to " + dst.String()
	dst = dst.Unmap()
	if !dst.Is4() {
		return Route{}, fmt.Errorf("platform: %s: %w", op, ErrNoRoute) // vpcvpn routes IPv4 only
	}
	m := rtMsg{typ: rtmGet, flags: rtfUp | rtfGateway | rtfHost | rtfStatic, seq: t.nextSeq()}
	m.set(rtaxDst, inetAddr(dst))
	m.set(rtaxIFP, linkAddr(0, ""))
	rep, err := t.query(m)
	if isNoRouteErr(err) || (err == nil && rep.flags&(rtfReject|rtfBlackhole) != 0) {
		return Route{}, fmt.Errorf("platform: %s: %w", op, ErrNoRoute)
	}
	if err != nil {
		return Route{}, rtErr(op, err)
	}
	r := Route{Dst: netip.PrefixFrom(dst, 32), Dev: t.dev(rep), Gateway: rep.gateway()}
	if rep.has(rtaxIFA) && rep.sa[rtaxIFA].family == afInet {
		r.Src = rep.sa[rtaxIFA].ip
	}
	return r, nil
}

// dev names the interface of reply m: its RTA_IFP, else its index.
func (t *rtTable) dev(m rtMsg) string {
	if m.has(rtaxIFP) && m.sa[rtaxIFP].family == afLink && m.sa[rtaxIFP].name != "" {
		return m.sa[rtaxIFP].name
	}
	return t.ifName(int(m.index))
}

// table reads the routing table.
func (t *rtTable) table() ([]rtMsg, error) {
	b, err := t.sock.dump()
	if err != nil {
		return nil, err
	}
	return parseRtMsgs(b)
}

// defaultRoutes returns the IPv4 default routes: the primary one and the
// scoped one (RTF_IFSCOPE) of every other interface, as netstat -rn lists
// them; reject and blackhole routes left out.
func (t *rtTable) defaultRoutes() ([]Route, error) {
	msgs, err := t.table()
	if err != nil {
		return nil, rtErr("list default routes", err)
	}
	var routes []Route
	for _, m := range msgs {
		dst, ok := m.dst()
		if !ok || dst.Bits() != 0 || m.flags&(rtfReject|rtfBlackhole) != 0 {
			continue
		}
		r := Route{Dst: dst, Dev: t.ifName(int(m.index)), Gateway: m.gateway()}
		if !slices.Contains(routes, r) {
			routes = append(routes, r)
		}
	}
	return routes, nil
}

// linkRoutes returns the IPv4 routes bound to interface name.
func (t *rtTable) linkRoutes(name string) ([]Route, error) {
	op := "list routes of " + name
	index, err := t.ifIndex(name)
	if err != nil {
		return nil, rtErr(op, err)
	}
	msgs, err := t.table()
	if err != nil {
		return nil, rtErr(op, err)
	}
	var routes []Route
	for _, m := range msgs {
		if dst, ok := m.dst(); ok && int(m.index) == index {
			routes = append(routes, Route{Dst: dst, Dev: name, Gateway: m.gateway()})
		}
	}
	return routes, nil
}

// rtReply finds the reply to request seq of process pid among the messages
// of one read from a routing socket, which carries every process's.
func rtReply(b []byte, pid, seq int32) (rtMsg, bool) {
	msgs, _ := parseRtMsgs(b)
	for _, m := range msgs {
		if m.typ == rtmGet && m.pid == pid && m.seq == seq {
			return m, true
		}
	}
	return rtMsg{}, false
}

// rtErr adds the package prefix and op to err, and the sentinel that says
// what to do when err is a lack of privilege.
func rtErr(op string, err error) error {
	if errors.Is(err, errnoEPERM) || errors.Is(err, errnoEACCES) {
		return fmt.Errorf("platform: %s: %w: %w", op, ErrPermission, err)
	}
	return fmt.Errorf("platform: %s: %w", op, err)
}
