package platform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/vpcvpn/vpcvpn/internal/vpctest"
)

// fakeMac is the macOS a utunHost sees in tests: a routing table that
// answers the routing socket as xnu does, interfaces, ifconfig and the utun
// driver. Everything the host writes and runs goes into a transcript, the
// routing messages as hex dumps.
type fakeMac struct {
	t      *testing.T
	w      strings.Builder
	routes []fakeRoute
	ifaces []net.Interface
	addrs  map[string][]netip.Prefix
	fail   syscall.Errno // the next routing socket write fails with it
}

type fakeRoute struct {
	dst   netip.Prefix
	index int        // the interface
	gw    netip.Addr // zero: a route on the link
	flags uint32
}

const fakePID = 4242

func newFakeMac(t *testing.T) *fakeMac {
	return &fakeMac{
		t: t,
		ifaces: []net.Interface{
			{Index: 1, Name: "lo0", MTU: 16384, Flags: net.FlagUp | net.FlagLoopback},
			{Index: 4, Name: "en0", MTU: 1500, Flags: net.FlagUp | net.FlagBroadcast},
			{Index: 9, Name: "utun3", MTU: 1380, Flags: net.FlagUp | net.FlagPointToPoint},
		},
		addrs: map[string][]netip.Prefix{
			"lo0":   {netip.MustParsePrefix("127.0.0.1/8")},
			"en0":   {netip.MustParsePrefix("192.168.1.23/24")},
			"utun3": {netip.MustParsePrefix("10.8.0.2/32")},
		},
		routes: []fakeRoute{
			{dst: pfx("0.0.0.0/0"), index: 4, gw: ip("192.168.1.1"), flags: rtfUp | rtfGateway | rtfStatic},
			{dst: pfx("0.0.0.0/0"), index: 9, gw: ip("10.8.0.1"), flags: rtfUp | rtfGateway | rtfStatic | rtfIFScope},
			{dst: pfx("127.0.0.0/8"), index: 1, gw: ip("127.0.0.1"), flags: rtfUp | rtfGateway | rtfStatic},
			{dst: pfx("192.168.1.0/24"), index: 4, flags: rtfUp | rtfStatic},
			{dst: pfx("10.1.0.0/16"), index: 9, flags: rtfUp | rtfStatic},
			{dst: pfx("203.0.113.0/24"), index: 1, gw: ip("127.0.0.1"), flags: rtfUp | rtfGateway | rtfStatic | rtfReject},
		},
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// host returns a utunHost on m.
func (m *fakeMac) host() *utunHost {
	h := &utunHost{
		log:        vpctest.Logger(m.t),
		run:        m.run,
		create:     m.create,
		interfaces: func() ([]net.Interface, error) { return slices.Clone(m.ifaces), nil },
		addrs:      m.netAddrs,
	}
	return newUTUNHost(h, m)
}

func (m *fakeMac) printf(format string, args ...any) { fmt.Fprintf(&m.w, format+"\n", args...) }

// op runs one Host call and writes it and its result.
func (m *fakeMac) op(call string, f func() (any, error)) {
	m.printf("# %s", call)
	v, err := f()
	switch {
	case err != nil:
		m.printf("= error: %v", err)
	case v == nil:
		m.printf("= ok")
	default:
		m.printf("= %v", v)
	}
	m.printf("")
}

// The routeSocket of the fake.

func (m *fakeMac) send(req []byte) error {
	r := m.request(req)
	if err := m.fail; err != 0 {
		m.fail = 0
		m.printf("< errno %d", err)
		return err
	}
	dst, _ := r.dst()
	i := slices.IndexFunc(m.routes, func(fr fakeRoute) bool { return fr.dst == dst && fr.flags&rtfIFScope == 0 })
	switch {
	case r.typ == rtmAdd && i >= 0:
		m.printf("< errno %d (EEXIST)", errnoEEXIST)
		return errnoEEXIST
	case r.typ == rtmAdd:
		fr := fakeRoute{dst: dst, gw: r.gateway(), flags: r.flags}
		fr.index = int(r.sa[rtaxGateway].index)
		if fr.gw.IsValid() {
			fr.index = m.lookup(fr.gw).index
		}
		m.routes = append(m.routes, fr)
	case r.typ == rtmDelete && i < 0:
		m.printf("< errno %d (ESRCH)", errnoESRCH)
		return errnoESRCH
	case r.typ == rtmDelete:
		m.routes = slices.Delete(m.routes, i, i+1)
	}
	m.printf("< ok")
	return nil
}

func (m *fakeMac) get(req []byte) (rtMsg, error) {
	r := m.request(req)
	var fr fakeRoute
	if r.has(rtaxNetmask) { // the exact route, as rn_lookup with a mask
		dst, _ := r.dst()
		i := slices.IndexFunc(m.routes, func(fr fakeRoute) bool { return fr.dst == dst && fr.flags&rtfIFScope == 0 })
		if i >= 0 {
			fr = m.routes[i]
		}
	} else {
		fr = m.lookup(r.sa[rtaxDst].ip)
	}
	if !fr.dst.IsValid() {
		m.printf("< errno %d (ESRCH)", errnoESRCH)
		return rtMsg{}, errnoESRCH
	}
	reply, err := parseRtMsg(m.kernelMsg(fr, rtmGet, r.seq, r.has(rtaxIFP)))
	if err != nil {
		m.t.Fatalf("the kernel's reply does not parse: %v", err)
	}
	m.printf("< %s", &reply)
	return reply, nil
}

func (m *fakeMac) dump() ([]byte, error) {
	m.printf("> sysctl net.route.0.inet.dump")
	var b []byte
	for _, fr := range m.routes {
		b = append(b, m.kernelMsg(fr, rtmGet, 0, false)...)
	}
	msgs, err := parseRtMsgs(b)
	if err != nil {
		m.t.Fatalf("the kernel's dump does not parse: %v", err)
	}
	for _, r := range msgs {
		m.printf("< %s", &r)
	}
	return b, nil
}

// request writes a request into the transcript and checks that it is one
// message that parses.
func (m *fakeMac) request(req []byte) rtMsg {
	r, err := parseRtMsg(req)
	if err != nil || int(binary.LittleEndian.Uint16(req)) != len(req) {
		m.t.Fatalf("bad request %x: %v", req, err)
	}
	m.printf("> %s", &r)
	m.w.WriteString(hexdump(req))
	return r
}

// lookup is the kernel's longest-prefix match, unscoped routes only.
func (m *fakeMac) lookup(a netip.Addr) fakeRoute {
	var best fakeRoute
	for _, fr := range m.routes {
		if fr.flags&rtfIFScope == 0 && fr.dst.Contains(a) && (!best.dst.IsValid() || fr.dst.Bits() > best.dst.Bits()) {
			best = fr
		}
	}
	return best
}

// kernelMsg encodes fr as xnu does in replies and dumps: netmasks shortened
// with family 0xff (length 0 for the default route's), a link gateway as
// the interface's whole sockaddr_dl, and with ifp the interface and its
// address.
func (m *fakeMac) kernelMsg(fr fakeRoute, typ uint8, seq int32, ifp bool) []byte {
	flags := fr.flags | 0x40 // RTF_DONE
	var addrs uint32
	var body []byte
	sdl := func(index int) []byte {
		name := m.ifaces[slices.IndexFunc(m.ifaces, func(i net.Interface) bool { return i.Index == index })].Name
		b := make([]byte, 20)
		b[0], b[1], b[4], b[5] = 20, afLink, 1, byte(len(name))
		binary.LittleEndian.PutUint16(b[2:], uint16(index))
		copy(b[8:], name)
		return b
	}
	sin := func(a netip.Addr) []byte {
		b := make([]byte, 16)
		b[0], b[1] = 16, afInet
		a4 := a.As4()
		copy(b[4:], a4[:])
		return b
	}
	add := func(i int, b []byte) {
		addrs |= 1 << i
		body = append(body, b...)
	}
	add(rtaxDst, sin(fr.dst.Addr()))
	if fr.gw.IsValid() {
		add(rtaxGateway, sin(fr.gw))
	} else {
		add(rtaxGateway, sdl(fr.index))
	}
	if fr.dst.Bits() == 32 {
		flags |= rtfHost
	} else {
		mask := maskAddr(fr.dst.Bits()).ip.As4()
		n := 4
		for n > 0 && mask[n-1] == 0 {
			n--
		}
		b := []byte{0, 0xff, 0, 0, 0, 0, 0, 0}
		if n > 0 {
			b[0] = byte(4 + n)
			copy(b[4:], mask[:n])
		} else {
			b = []byte{0, afInet, 0, 0}
		}
		add(rtaxNetmask, b[:roundSockaddr(int(b[0]))])
	}
	if ifp {
		add(rtaxIFP, sdl(fr.index))
		name := m.ifaces[slices.IndexFunc(m.ifaces, func(i net.Interface) bool { return i.Index == fr.index })].Name
		add(rtaxIFA, sin(m.addrs[name][0].Addr()))
	}
	pid := int32(0)
	if seq != 0 {
		pid = fakePID
	}
	h := rtHeader(rtMsghdrLen+len(body), typ, uint16(fr.index), flags, addrs, pid, seq, 0)
	return append(h, body...)
}

// The rest of the system: ifconfig, the utun driver, addresses.

func (m *fakeMac) run(argv ...string) ([]byte, error) {
	m.printf("$ %s", strings.Join(argv, " "))
	name := argv[1]
	switch {
	case len(argv) == 5 && argv[2] == "inet" && argv[4] != "-alias":
		m.addrs[name] = append(m.addrs[name], pfx(argv[3]))
	case len(argv) == 5 && argv[4] == "-alias":
		m.addrs[name] = slices.DeleteFunc(m.addrs[name], func(p netip.Prefix) bool { return p == pfx(argv[3]) })
	}
	return nil, nil
}

func (m *fakeMac) create(name string, mtu int) (tun.Device, error) {
	m.printf("$ open utun control unit for %s, mtu %d", name, mtu)
	if name == "utun" {
		name = "utun5"
	}
	if slices.ContainsFunc(m.ifaces, func(i net.Interface) bool { return i.Name == name }) {
		return nil, errnoEBUSY
	}
	m.ifaces = append(m.ifaces, net.Interface{Index: 12, Name: name, MTU: mtu, Flags: net.FlagPointToPoint})
	return fakeUTUN{Device: tuntest.NewChannelTUN().TUN(), name: name}, nil
}

type fakeUTUN struct {
	tun.Device
	name string
}

func (d fakeUTUN) Name() (string, error) { return d.name, nil }

func (m *fakeMac) netAddrs(ifi *net.Interface) ([]net.Addr, error) {
	var out []net.Addr
	for _, i := range m.ifaces {
		if ifi != nil && i.Name != ifi.Name {
			continue
		}
		for _, p := range m.addrs[i.Name] {
			out = append(out, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)})
		}
	}
	return out, nil
}

// hexdump formats b 16 bytes to a line, as hexdump -C without the text.
func hexdump(b []byte) string {
	var s strings.Builder
	for off := 0; off < len(b); off += 16 {
		fmt.Fprintf(&s, "  %04x ", off)
		for i := off; i < min(off+16, len(b)); i++ {
			if i == off+8 {
				s.WriteString(" ")
			}
			fmt.Fprintf(&s, " %02x", b[i])
		}
		s.WriteString("\n")
	}
	return s.String()
}

func rt(dst, dev, gw string) Route {
	r := Route{Dst: pfx(dst), Dev: dev}
	if gw != "" {
		r.Gateway = ip(gw)
	}
	return r
}

// TestUTUNHost: what the macOS Host writes to the routing socket and runs,
// compared with testdata/rtmsg/*.golden (go test -update rewrites them).
func TestUTUNHost(t *testing.T) {
	tests := []struct {
		name string
		run  func(m *fakeMac, h *utunHost)
	}{
		{name: "add", run: testRtAdd},
		{name: "delete", run: testRtDelete},
		{name: "get", run: testRtGet},
		{name: "defaults", run: testRtDefaults},
		{name: "up-down", run: testUpDown},
		{name: "cleanup", run: testRtCleanup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newFakeMac(t)
			tt.run(m, m.host())
			golden(t, filepath.Join("testdata/rtmsg", tt.name+".golden"), []byte(m.w.String()))
		})
	}
}

// withUTUN5 gives m the utun5 of a running vpcvpn.
func withUTUN5(m *fakeMac) {
	m.ifaces = append(m.ifaces, net.Interface{Index: 12, Name: "utun5", MTU: 1500, Flags: net.FlagUp | net.FlagPointToPoint})
	m.addrs["utun5"] = []netip.Prefix{pfx("100.77.0.1/32")}
}

func testRtAdd(m *fakeMac, h *utunHost) {
	withUTUN5(m)
	for _, r := range []Route{
		rt("10.0.0.0/16", "utun5", ""),
		rt("100.77.0.53/32", "utun5", ""),
		rt("10.0.0.0/16", "utun5", ""), // EEXIST
		rt("10.1.0.0/16", "utun5", ""), // another VPN's
		rt("172.16.0.0/12", "", "192.168.1.1"),
		rt("10.2.0.0/16", "utun9", ""), // no such interface
		rt("fd00::/8", "utun5", ""),
	} {
		m.op("AddRoute "+r.String(), func() (any, error) { return nil, h.AddRoute(r) })
	}
	m.fail = errnoEPERM
	r := rt("10.3.0.0/16", "utun5", "")
	m.op("AddRoute "+r.String()+" (not root)", func() (any, error) {
		err := h.AddRoute(r)
		if !errors.Is(err, ErrPermission) {
			m.t.Errorf("AddRoute as non-root: %v, want ErrPermission", err)
		}
		return nil, err
	})
}

func testRtDelete(m *fakeMac, h *utunHost) {
	withUTUN5(m)
	m.routes = append(m.routes,
		fakeRoute{dst: pfx("10.0.0.0/16"), index: 12, flags: rtfUp | rtfStatic},
		fakeRoute{dst: pfx("100.77.0.53/32"), index: 12, flags: rtfUp | rtfStatic | rtfHost},
	)
	for _, r := range []Route{
		rt("10.0.0.0/16", "utun5", ""),
		rt("10.0.0.0/16", "utun5", ""),    // gone: nothing deleted
		rt("100.77.0.53/32", "utun5", ""), // a host route
		rt("10.1.0.0/16", "utun5", ""),    // utun3's now: left alone
		rt("10.2.0.0/16", "utun9", ""),    // the link is gone, and its routes with it
	} {
		m.op("DeleteRoute "+r.String(), func() (any, error) { return nil, h.DeleteRoute(r) })
	}
}

func testRtGet(m *fakeMac, h *utunHost) {
	withUTUN5(m)
	m.routes = append(m.routes, fakeRoute{dst: pfx("10.0.0.0/16"), index: 12, flags: rtfUp | rtfStatic})
	for _, a := range []string{"52.94.1.1", "192.168.1.40", "10.0.3.4", "10.1.2.3", "203.0.113.9", "::1"} {
		m.op("RouteFor "+a, func() (any, error) { return h.RouteFor(ip(a)) })
	}
	m.routes = slices.DeleteFunc(m.routes, func(fr fakeRoute) bool { return fr.dst.Bits() == 0 })
	m.op("RouteFor 52.94.1.1 (no default route)", func() (any, error) {
		r, err := h.RouteFor(ip("52.94.1.1"))
		if !errors.Is(err, ErrNoRoute) {
			m.t.Errorf("RouteFor without a default route: %v, want ErrNoRoute", err)
		}
		return r, err
	})
}

func testRtDefaults(m *fakeMac, h *utunHost) {
	m.routes = append(m.routes,
		fakeRoute{dst: pfx("0.0.0.0/0"), index: 4, gw: ip("192.168.1.1"), flags: rtfUp | rtfGateway | rtfStatic | rtfIFScope},
		fakeRoute{dst: pfx("0.0.0.0/0"), index: 1, gw: ip("127.0.0.1"), flags: rtfUp | rtfGateway | rtfStatic | rtfIFScope | rtfBlackhole},
		fakeRoute{dst: pfx("0.0.0.0/1"), index: 9, flags: rtfUp | rtfStatic},
	)
	m.op("DefaultRoutes", func() (any, error) { return h.DefaultRoutes() })
}

// testUpDown is what `vpcvpn up` and its exit do on macOS, in routing.Plan's
// order: create the utun (--name vpcvpn0 is not a utun name), configure it,
// route into it, then revert.
func testUpDown(m *fakeMac, h *utunHost) {
	var name string
	m.op("CreateTUN vpcvpn0 1500", func() (any, error) {
		dev, err := h.CreateTUN("vpcvpn0", 1500)
		if err != nil {
			return nil, err
		}
		name, err = dev.Name()
		return name, err
	})
	addr := pfx("100.77.0.1/32")
	routes := []Route{rt("10.0.0.0/16", name, ""), rt("100.77.0.53/32", name, "")}
	m.op("ConfigureLink "+name+" 100.77.0.1/32 0", func() (any, error) { return nil, h.ConfigureLink(name, addr, 0) })
	for _, r := range routes {
		m.op("AddRoute "+r.String(), func() (any, error) { return nil, h.AddRoute(r) })
	}
	for _, r := range slices.Backward(routes) {
		m.op("DeleteRoute "+r.String(), func() (any, error) { return nil, h.DeleteRoute(r) })
	}
	m.op("DeconfigureLink "+name+" 100.77.0.1/32", func() (any, error) { return nil, h.DeconfigureLink(name, addr) })
	m.op("DeconfigureLink "+name+" 100.77.0.1/32 (again)", func() (any, error) { return nil, h.DeconfigureLink(name, addr) })
	m.op("ConfigureLink utun5 100.77.0.1/32 1400", func() (any, error) { return nil, h.ConfigureLink("utun5", addr, 1400) })
	m.op("CreateTUN utun3 1500", func() (any, error) {
		_, err := h.CreateTUN("utun3", 1500)
		if !errors.Is(err, ErrLinkExists) {
			m.t.Errorf("CreateTUN of a utun in use: %v, want ErrLinkExists", err)
		}
		return nil, err
	})
	m.op("CreateTUN utun 40", func() (any, error) { _, err := h.CreateTUN("utun", 40); return nil, err })
}

// testRtCleanup is what routing.Cleanup and `vpcvpn down --cleanup` ask:
// with --name vpcvpn0 there is no such link; a utun is always attached, so
// Cleanup leaves it alone. LinkRoutes and DeleteLink answer all the same.
func testRtCleanup(m *fakeMac, h *utunHost) {
	withUTUN5(m)
	m.routes = append(m.routes,
		fakeRoute{dst: pfx("10.0.0.0/16"), index: 12, flags: rtfUp | rtfStatic},
		fakeRoute{dst: pfx("100.77.0.53/32"), index: 12, flags: rtfUp | rtfStatic | rtfHost},
	)
	for _, name := range []string{"vpcvpn0", "utun5", "en0", "lo0", "utun3"} {
		m.op("Link "+name, func() (any, error) { return h.Link(name) })
	}
	m.op("LinkRoutes utun5", func() (any, error) { return h.LinkRoutes("utun5") })
	m.op("LinkRoutes vpcvpn0", func() (any, error) { return h.LinkRoutes("vpcvpn0") })
	m.op("DeleteLink vpcvpn0", func() (any, error) { return nil, h.DeleteLink("vpcvpn0") })
	m.op("DeleteLink utun5", func() (any, error) { return nil, h.DeleteLink("utun5") })
	m.op("LocalAddrs", func() (any, error) { return h.LocalAddrs() })
}
