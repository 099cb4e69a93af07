//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const pgConf = `
# vpcvpn lab
listen_addresses = '%s'
port = %d
unix_socket_directories = '%s'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_destination = 'stderr'
logging_collector = off
`

const pgHBA = `# vpcvpn lab: trust on the lab's networks only
local all all trust
host all all 127.0.0.1/32 trust
host all all ` + VPCCIDR + ` trust
host all all ` + PublicCIDR + ` trust
`

// startPostgres initialises a cluster owned by postgres in the lab directory
// and runs it in the vpc namespace, listening on VPCHostAddr:PostgresPort.
func (l *Lab) startPostgres(ctx context.Context) error {
	bin, err := postgresBin()
	if err != nil {
		return err
	}
	data := l.Path("pg")
	if err := pgInit(ctx, bin, data); err != nil {
		return err
	}
	p, err := l.Start(l.VPC, "postgres", syscall.SIGINT, // SIGINT: fast shutdown
		"runuser", "-u", "postgres", "--", filepath.Join(bin, "postgres"), "-D", data)
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		_, err := l.Exec(ctx, l.VPC, filepath.Join(bin, "pg_isready"), "-q", "-t", "1",
			"-h", VPCHostAddr, "-p", strconv.Itoa(PostgresPort))
		return err
	}
	if err := poll(ctx, 30*time.Second, "postgres", p, ready); err != nil {
		return err
	}
	_, err = l.Psql(ctx, l.VPC, VPCHostAddr, PostgresPort, "postgres", "create database "+Database)
	return err
}

func pgInit(ctx context.Context, bin, data string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("lab: postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	out, err := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: initdb: %w: %s", err, tail(string(out), 800))
	}
	conf := fmt.Sprintf(pgConf, VPCHostAddr, PostgresPort, data)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lab: postgresql.conf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return os.Chown(filepath.Join(data, "pg_hba.conf"), uid, gid)
}

// Psql runs one SQL command with psql from namespace ns against host:port as
// user postgres in database db ("" means Database) and returns its
// unaligned, tuples-only output, trimmed.
func (l *Lab) Psql(ctx context.Context, ns, host string, port int, db, sql string) (string, error) {
	if db == "" {
		db = Database
	}
	out, err := l.Exec(ctx, ns, "env", "PGCONNECT_TIMEOUT=10", "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", host, "-p", strconv.Itoa(port), "-U", "postgres", "-d", db, "-c", sql)
	return strings.TrimSpace(out), err
}

// Query runs sql from the laptop against the VPC's PostgreSQL, which works
// only when something (vpcvpn) carries the laptop's traffic to the VPC.
func (l *Lab) Query(ctx context.Context, sql string) (string, error) {
	return l.Psql(ctx, l.Laptop, VPCHostAddr, PostgresPort, "", sql)
}

// postgresBin returns the newest /usr/lib/postgresql/<v>/bin with a server.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return "", fmt.Errorf("lab: no /usr/lib/postgresql/*/bin/postgres (apt install postgresql)")
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

func pgVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}
