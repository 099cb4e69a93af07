package routing

import "testing"

// TestSetInterface: a plan made before the kernel named the TUN (a macOS
// utun) applies and reverts on the name it was given, DNS included, and
// cannot be renamed once applied.
func TestSetInterface(t *testing.T) {
	h := newLaptop(t)
	p, err := NewPlan(dnsConfig(h), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetInterface(""); err == nil {
		t.Errorf("SetInterface(\"\") succeeded")
	}
	if _, err := h.CreateTUN("utun5", 1500); err != nil {
		t.Fatal(err)
	}
	if err := p.SetInterface("utun5"); err != nil {
		t.Fatal(err)
	}
	h.ResetTranscript()
	if err := p.Apply(); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	checkTranscript(t, h, []string{
		"link configure utun5 addr 100.77.0.1/32 up",
		"route add 10.0.0.0/16 dev utun5 src 100.77.0.1",
		"route add 100.77.0.53/32 dev utun5 src 100.77.0.1",
		"dns set utun5 server 100.77.0.53 domains rds.amazonaws.com compute.internal",
	})
	if err := p.SetInterface("utun6"); err == nil || err.Error() != "routing: plan already applied" {
		t.Errorf("SetInterface after Apply: %v", err)
	}
	if err := p.Revert(); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	checkTranscript(t, h, []string{
		"dns revert utun5",
		"route del 100.77.0.53/32 dev utun5 src 100.77.0.1",
		"route del 10.0.0.0/16 dev utun5 src 100.77.0.1",
		"link deconfigure utun5 addr 100.77.0.1/32",
	})
}
