//go:build linux

// Command labnet is the lab's small network tool, run inside its namespaces:
//
//	labnet pipe [-log FILE] HOST PORT   connect and copy stdin/stdout (a ProxyCommand)
//	labnet serve echo|sink|source ADDR  run one of the lab's test servers
//
// The serve protocols are those of package lab (Echo, Sink, Source).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/vpcvpn/vpcvpn/integration/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labnet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: labnet pipe|serve ...")
	}
	switch args[0] {
	case "pipe":
		return runPipe(ctx, args[1:])
	case "serve":
		return runServe(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func runPipe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pipe", flag.ContinueOnError)
	logPath := fs.String("log", "", "append \"HOST:PORT\" to `FILE` once connected")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("usage: labnet pipe [-log FILE] HOST PORT")
	}
	addr := net.JoinHostPort(fs.Arg(0), fs.Arg(1))
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if *logPath != "" {
		if err := appendLine(*logPath, addr); err != nil {
			return err
		}
	}
	return pipe(c.(*net.TCPConn))
}

// pipe copies stdin to c and c to stdout until c's side ends.
func pipe(c *net.TCPConn) error {
	go func() {
		io.Copy(c, os.Stdin)
		c.CloseWrite()
	}()
	_, err := io.Copy(os.Stdout, c)
	return err
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	return errors.Join(err, f.Close())
}

func runServe(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("usage: labnet serve echo|sink|source ADDR")
	}
	handlers := map[string]func(net.Conn){"echo": lab.Echo, "sink": lab.Sink, "source": lab.Source}
	h, ok := handlers[args[0]]
	if !ok {
		return fmt.Errorf("unknown server %q", args[0])
	}
	ln, err := net.Listen("tcp", args[1])
	if err != nil {
		return err
	}
	s := lab.NewServer(ln, h)
	fmt.Fprintf(os.Stderr, "labnet: %s listening on %s\n", args[0], s.Addr())
	<-ctx.Done()
	return s.Close()
}
