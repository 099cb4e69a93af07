package dnsproxy_test

import (
	"fmt"
	"log"
	"net"

	"github.com/miekg/dns"

	"github.com/vpcvpn/vpcvpn/dnsproxy"
)

// Example serves split DNS on loopback sockets. In vpcvpn the PacketConn
// and the Listener come from the netstack, at an address inside the
// tunnel, and Dial is (*ssh.Client).DialContext, which reaches the VPC
// resolver from the bastion; here Dial reaches a stand-in on loopback.
func Example() {
	vpc := startResolver()
	defer vpc.Shutdown()

	p, err := dnsproxy.New(dnsproxy.Config{
		Dial:     new(net.Dialer).DialContext,
		Upstream: vpc.Listener.Addr().String(),
		Domains:  append(dnsproxy.DefaultDomains(), "corp.example"),
	})
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- p.ServePacket(pc) }()
	go func() { served <- p.Serve(l) }()

	for _, name := range []string{"db.rds.amazonaws.com.", "git.corp.example.", "www.example.com."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		ans, err := dns.Exchange(q, pc.LocalAddr().String())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(name, " ", dns.RcodeToString[ans.Rcode])
		for _, rr := range ans.Answer {
			fmt.Print(" ", rr.(*dns.A).A)
		}
		fmt.Println()
	}
	s := p.Stats()
	fmt.Printf("queries %d, forwarded %d, refused %d\n", s.Queries, s.Forwarded, s.Refused)

	p.Close()
	<-served
	<-served
	// Output:
	// db.rds.amazonaws.com. NOERROR 10.0.1.5
	// git.corp.example. NOERROR 10.0.1.5
	// www.example.com. REFUSED
	// queries 3, forwarded 2, refused 1
}

// startResolver starts a DNS server over TCP on loopback that answers
// every name with 10.0.1.5.
func startResolver() *dns.Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		Listener:          l,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg).SetReply(r)
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(10, 0, 1, 5),
			})
			w.WriteMsg(m)
		}),
	}
	go srv.ActivateAndServe()
	<-started
	return srv
}
