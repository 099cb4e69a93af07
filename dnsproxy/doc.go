// Package dnsproxy will serve split DNS for the tunnel: queries for private
// domains are forwarded to the VPC resolver over the tunnel, and the rest are
// left to the host's resolver.
//
// As of 2026-11-22 it is empty; split DNS arrives with its own issue.
package dnsproxy
