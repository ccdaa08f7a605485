package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a throwaway PostgreSQL cluster of a test's own (initdb into a
// temporary directory, a free loopback port, trust authentication), for
// tests that restart or stop PostgreSQL, which the shared server on
// DATABASE_URL must never be. It is stopped and removed at cleanup.
//
// The postmaster runs as the test's child (not daemonised by pg_ctl) and
// gets SIGQUIT when the test process dies, so a test killed by its timeout
// leaves no server behind.
type Server struct {
	dir    string
	bin    string
	port   int
	ran    bool                // started once: the port is the one the services know
	cred   *syscall.Credential // the postgres user's, when the test runs as root
	proc   *exec.Cmd           // the running postmaster, nil when stopped
	exited chan struct{}       // closed when proc has exited
}

// StartServer creates and starts a new cluster. It fails the test, saying
// what is missing, when PostgreSQL's server programs (initdb, postgres) are
// not installed (Debian: the postgresql package; `.ci/run` installs it).
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := serverBinDir()
	if err != nil {
		tb.Fatalf("pgtest: a throwaway PostgreSQL cluster needs initdb and postgres: %v "+
			"(install the PostgreSQL server package, e.g. apt-get install postgresql, or set PG_BINDIR)", err)
	}
	s := &Server{bin: bin}
	s.dir, err = os.MkdirTemp("", "accountdb-pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(s.dir) })
	// initdb refuses to run as root: the cluster then belongs to the
	// postgres user, as in `.ci/run`.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("pgtest: running as root, initdb needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	tb.Cleanup(func() { s.stop() })
	s.Start(tb)
	return s
}

// URL is the superuser's URL on the cluster's postgres database, the
// equivalent of DATABASE_URL for NewOn.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", s.port)
}

// Start starts the cluster (again), on the same port after the first time,
// and waits until it accepts connections.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	var last []byte
	for try := 0; try < 3; try++ {
		if !s.ran { // a port taken meanwhile by another process: take another
			s.port = freePort(tb)
		}
		logPath := filepath.Join(s.dir, "server.log")
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir, "-c", "max_connections=300")
		cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
		if err := cmd.Start(); err != nil {
			logf.Close()
			tb.Fatalf("pgtest: start postgres: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
		if s.waitReady(exited) {
			s.proc, s.exited, s.ran = cmd, exited, true
			return
		}
		_ = cmd.Process.Signal(syscall.SIGQUIT) // still starting after a minute
		<-exited
		last, _ = os.ReadFile(logPath)
	}
	tb.Fatalf("pgtest: the throwaway cluster did not start:\n%s", last)
}

// Crash stops the cluster at once, as a killed server or a lost machine
// would (SIGQUIT, PostgreSQL's immediate shutdown: no checkpoint, every
// session cut; the next Start recovers from the WAL).
func (s *Server) Crash(tb testing.TB) {
	tb.Helper()
	if s.proc == nil {
		tb.Fatal("pgtest: Crash of a cluster that is not running")
	}
	s.stop()
}

func (s *Server) stop() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.exited
	}
	s.proc = nil
}

// waitReady waits until the server accepts connections (true), or exits
// (false: a port taken, say).
func (s *Server) waitReady(exited <-chan struct{}) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return true
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) run(program string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, program), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// serverBinDir is PG_BINDIR, or the newest /usr/lib/postgresql/*/bin
// (Debian), or the directory pg_config names.
func serverBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("PG_BINDIR=%s holds no initdb and postgres", dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("not found in /usr/lib/postgresql/*/bin nor pg_config --bindir")
}

func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
