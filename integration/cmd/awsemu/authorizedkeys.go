package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vpcvpn/vpcvpn/integration/awsemu"
)

// runAuthorizedKeys prints the keys pushed for USER, for sshd's
// AuthorizedKeysCommand. No keys is not an error (sshd then denies).
func runAuthorizedKeys(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("authorized-keys", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "emulator `URL` (https://ADDR)")
	ca := fs.String("ca", "", "CA bundle `file` (state-dir/ca.pem)")
	instance := fs.String("instance", "", "instance `i-ID`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" || *ca == "" || *instance == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: awsemu authorized-keys --endpoint URL --ca FILE --instance i-ID USER")
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("authorized-keys: read ca: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	keys, err := awsemu.FetchAuthorizedKeys(ctx, *endpoint, pem, *instance, fs.Arg(0))
	if err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Println(k)
	}
	return nil
}
