//go:build !linux

package netstack

import "golang.zx2c4.com/wireguard/tun"

// vnetOf returns nil: only Linux TUNs take virtio-net headers.
func vnetOf(tun.Device) outWriter { return nil }
