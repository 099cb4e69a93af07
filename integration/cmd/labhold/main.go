//go:build linux

// Command labhold brings the lab up with vpcvpn connected and an ssh -L to
// PostgreSQL beside it, prints how to reach it, and holds it until
// interrupted: a workbench for profiling and manual experiments.
//
//	go run ./integration/cmd/labhold -vpcvpn bin/vpcvpn
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

func main() {
	bin := flag.String("vpcvpn", "bin/vpcvpn", "vpcvpn `binary`")
	flag.Parse()
	if err := run(*bin, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "labhold:", err)
		os.Exit(1)
	}
}

func run(bin string, extra []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.New(ctx, lab.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.Exec(ctx, l.VPC, "env", "PGCONNECT_TIMEOUT=10", "pgbench", "-i", "-s", "1", "-q",
		"-h", lab.VPCHostAddr, "-p", strconv.Itoa(lab.PostgresPort), "-U", "postgres", lab.Database); err != nil {
		return err
	}
	if err := l.StartDataServers(); err != nil {
		return err
	}
	if _, err := l.StartSSHForward(ctx, "ssh-L-echo", "127.0.0.1:10007", fmt.Sprintf("%s:%d", lab.VPCHostAddr, lab.EchoPort)); err != nil {
		return err
	}
	if _, err := l.StartIperf3(ctx); err != nil {
		return err
	}
	if _, err := l.StartSSHForward(ctx, "ssh-L-postgres", "127.0.0.1:15432", fmt.Sprintf("%s:%d", lab.VPCHostAddr, lab.PostgresPort)); err != nil {
		return err
	}
	v, err := l.VPCVPN(bin)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	in, err := v.Start(sctx, append(v.UpArgs("vpcvpn0"), extra...)...)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("laptop namespace: %s (vpcvpn pid %d)\n", l.Laptop, in.PID())
	fmt.Printf("  ip netns exec %s pgbench -S -n -T 5 -h %s -U postgres %s   # via vpcvpn\n", l.Laptop, lab.VPCHostAddr, lab.Database)
	fmt.Printf("  ip netns exec %s pgbench -S -n -T 5 -h 127.0.0.1 -p 15432 -U postgres %s   # via ssh -L\n", l.Laptop, lab.Database)
	fmt.Println("Ctrl-C or SIGTERM tears it down.")
	<-ctx.Done()
	return nil
}
