package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// result is one run: exit code, stdout, stderr.
type result struct {
	code           int
	stdout, stderr string
}

func curl(t *testing.T, e env, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e.stdout, e.stderr = &out, &errOut
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
	if e.resolve == nil {
		e.resolve = func(context.Context, string, string) ([]net.IP, error) {
			return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
		}
	}
	if e.dial == nil {
		e.dial = func(ctx context.Context, network string, local net.Addr, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: local}
			return d.DialContext(ctx, network, addr)
		}
	}
	code := run(args, e)
	return result{code, out.String(), errOut.String()}
}

// server is the test's HTTP server: echoes what it got, answers with a
// chosen status, redirects, and blocks until the test ends on /block.
func server(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.Query().Get("msg"))
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.Header().Set("X-Test", "yes")
		w.WriteHeader(code)
		fmt.Fprint(w, "status body")
	})
	mux.HandleFunc("/request", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		fmt.Fprintf(w, "%s %s ua=%q accept=%q ct=%q x=%q host=%s auth=%s:%s body=%s",
			r.Method, r.URL.RequestURI(), r.UserAgent(), r.Header.Get("Accept"),
			r.Header.Get("Content-Type"), r.Header.Get("X-Custom"), r.Host, user, pass, body)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo?msg=landed", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	mux.HandleFunc("/partial", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, "part")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(mux)
	} else {
		s = httptest.NewServer(mux)
	}
	t.Cleanup(func() { close(done); s.Close() })
	return s
}

func expect(t *testing.T, got result, code int, stdout string) {
	t.Helper()
	if got.code != code || got.stdout != stdout {
		t.Fatalf("got exit %d stdout %q (stderr %q), want exit %d stdout %q",
			got.code, got.stdout, got.stderr, code, stdout)
	}
}

func TestBodyExactlyOnStdout(t *testing.T) {
	s := server(t, false)
	expect(t, curl(t, env{}, s.URL+"/echo?msg=poststart"), 0, "poststart")
	expect(t, curl(t, env{}, "-g", "-q", "-s", s.URL+"/echo?msg=a%20b"), 0, "a b")
	// No scheme means http.
	expect(t, curl(t, env{}, "--silent", strings.TrimPrefix(s.URL, "http://")+"/echo?msg=x"), 0, "x")
}

func TestWriteOutHTTPCode(t *testing.T) {
	s := server(t, false)
	expect(t, curl(t, env{}, "-g", "-q", "-s", "-o", "/dev/null", "-w", "%{http_code}", s.URL+"/status/404"), 0, "404")
	expect(t, curl(t, env{}, "-s", "-o", "/dev/null", "-w", `%{http_code}\n`, s.URL+"/echo"), 0, "200\n")
	expect(t, curl(t, env{}, "-s", "-w", "[%{response_code}|%%|%{num_redirects}|%{method}]", s.URL+"/echo?msg=b"), 0, "b[200|%|0|GET]")
	// The status code of a refused connection is 000, and -w still writes.
	expect(t, curl(t, env{}, "-s", "-o", "/dev/null", "-w", "%{http_code}", closedURL(t)), 7, "000")
}

func TestFail(t *testing.T) {
	s := server(t, false)
	got := curl(t, env{}, "-f", s.URL+"/status/503")
	expect(t, got, 22, "")
	if !strings.Contains(got.stderr, "curl: (22) The requested URL returned error: 503") {
		t.Fatalf("stderr %q", got.stderr)
	}
	expect(t, curl(t, env{}, "-sf", s.URL+"/status/200"), 0, "status body")
	expect(t, curl(t, env{}, "-s", "--fail-with-body", s.URL+"/status/500"), 22, "status body")
	// Without -f an error status is a successful transfer.
	expect(t, curl(t, env{}, "-s", s.URL+"/status/500"), 0, "status body")
}

func TestIncludeAndHead(t *testing.T) {
	s := server(t, false)
	got := curl(t, env{}, "-i", "-q", "-s", s.URL+"/status/201")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "HTTP/1.1 201 Created\r\n") ||
		!strings.Contains(got.stdout, "\r\nX-Test: yes\r\n") || !strings.HasSuffix(got.stdout, "\r\n\r\nstatus body") {
		t.Fatalf("got %+v", got)
	}
	got = curl(t, env{}, "-sI", s.URL+"/request")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got.stdout, "\r\n\r\n") {
		t.Fatalf("got %+v", got)
	}
	// -I with -X GET: a GET, headers only; -o takes the headers, -w the code.
	expect(t, curl(t, env{}, "-XGET", "-sIk", "-o", "/dev/null", "-w", "'%{http_code}'", s.URL+"/status/401"), 0, "'401'")
	expect(t, curl(t, env{}, "-o", "/dev/null", "-i", "-q", "-s", "-w", "%{http_code}", "--connect-timeout", "1", s.URL+"/status/200"), 0, "200")
}

func TestRequestMethodDataHeaders(t *testing.T) {
	s := server(t, false)
	host := strings.TrimPrefix(s.URL, "http://")
	expect(t, curl(t, env{}, "-s", s.URL+"/request"), 0,
		`GET /request ua="curl/`+version+`" accept="*/*" ct="" x="" host=`+host+` auth=: body=`)
	expect(t, curl(t, env{}, "-s", "-d", "a=1", "--data", "b=2", "-H", "X-Custom: hi", "-u", "me:pw", s.URL+"/request"), 0,
		`POST /request ua="curl/`+version+`" accept="*/*" ct="application/x-www-form-urlencoded" x="hi" host=`+host+` auth=me:pw body=a=1&b=2`)
	expect(t, curl(t, env{}, "-s", "-X", "PUT", "-H", "Content-Type: text/plain", "-H", "User-Agent:", "-H", "Host: example", "--data-raw", "@x", s.URL+"/request"), 0,
		`PUT /request ua="" accept="*/*" ct="text/plain" x="" host=example auth=: body=@x`)
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("line1\nline2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, curl(t, env{}, "-s", "-XPATCH", "-d", "@"+file, s.URL+"/request"), 0,
		`PATCH /request ua="curl/`+version+`" accept="*/*" ct="application/x-www-form-urlencoded" x="" host=`+host+` auth=: body=line1line2`)
	expect(t, curl(t, env{stdin: strings.NewReader("in")}, "-s", "--data-binary", "@-", s.URL+"/request"), 0,
		`POST /request ua="curl/`+version+`" accept="*/*" ct="application/x-www-form-urlencoded" x="" host=`+host+` auth=: body=in`)
}

func TestOutputFile(t *testing.T) {
	s := server(t, false)
	file := filepath.Join(t.TempDir(), "out")
	expect(t, curl(t, env{}, "-sLo", file, s.URL+"/redirect"), 0, "")
	if b, err := os.ReadFile(file); err != nil || string(b) != "landed" {
		t.Fatalf("file %q, %v", b, err)
	}
	// A failed connection creates no file.
	missing := filepath.Join(t.TempDir(), "missing")
	expect(t, curl(t, env{}, "-s", "-o", missing, closedURL(t)), 7, "")
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat: %v", err)
	}
	expect(t, curl(t, env{}, "-s", "-o", filepath.Join(missing, "x"), s.URL+"/echo?msg=a"), 23, "")
}

func TestRedirects(t *testing.T) {
	s := server(t, false)
	got := curl(t, env{}, "-s", "-w", "%{http_code}", s.URL+"/redirect")
	if got.code != 0 || !strings.HasSuffix(got.stdout, "302") {
		t.Fatalf("without -L: %+v", got)
	}
	expect(t, curl(t, env{}, "-sL", "-w", " %{num_redirects} %{url_effective}", s.URL+"/redirect"), 0,
		"landed 1 "+s.URL+"/echo?msg=landed")
	expect(t, curl(t, env{}, "-s", "--location", "--max-redirs", "3", s.URL+"/loop"), 47, "")
}

func TestConnectErrors(t *testing.T) {
	got := curl(t, env{}, closedURL(t))
	expect(t, got, 7, "")
	if !strings.HasPrefix(got.stderr, "curl: (7) Failed to connect to 127.0.0.1 port ") {
		t.Fatalf("stderr %q", got.stderr)
	}
	// -s hides the message, -S shows it again.
	expect(t, curl(t, env{}, "-s", closedURL(t)), 7, "")
	if got := curl(t, env{}, "-s", closedURL(t)); got.stderr != "" {
		t.Fatalf("stderr %q", got.stderr)
	}
	if got := curl(t, env{}, "-sS", closedURL(t)); !strings.Contains(got.stderr, "(7)") {
		t.Fatalf("stderr %q", got.stderr)
	}
	got = curl(t, env{}, "-s", "-S", "http://no-such-host.invalid/")
	expect(t, got, 6, "")
	if got.stderr != "curl: (6) Could not resolve host: no-such-host.invalid\n" {
		t.Fatalf("stderr %q", got.stderr)
	}
	// A resolved name connects to its address.
	s := server(t, false)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	resolve := func(_ context.Context, _, host string) ([]net.IP, error) {
		if host == "svc.example" {
			return []net.IP{net.IPv4(127, 0, 0, 1)}, nil
		}
		return nil, errors.New("unknown")
	}
	expect(t, curl(t, env{resolve: resolve}, "-s", "http://svc.example:"+port+"/echo?msg=dns"), 0, "dns")
	expect(t, curl(t, env{}, "-s", "http://localhost:"+port+"/echo?msg=lo"), 0, "lo")
	expect(t, curl(t, env{}, "-s", "--interface", "127.0.0.1", "http://127.0.0.1:"+port+"/echo?msg=if"), 0, "if")
	expect(t, curl(t, env{}, "-s", "--interface", "no-such-if0", "http://127.0.0.1:"+port+"/"), 45, "")
	expect(t, curl(t, env{}, "-s", "ftp://127.0.0.1/"), 1, "")
	expect(t, curl(t, env{}, "-s", "http://"), 3, "")
}

func TestTimeouts(t *testing.T) {
	s := server(t, false)
	start := time.Now()
	expect(t, curl(t, env{}, "-q", "-s", "--max-time", "0.3", s.URL+"/block"), 28, "")
	expect(t, curl(t, env{}, "-s", "-m", "0.3", s.URL+"/partial"), 28, "part")
	if time.Since(start) > 10*time.Second {
		t.Fatalf("timeouts took %v", time.Since(start))
	}
	// A connect that never completes: --connect-timeout gives 28.
	hang := func(ctx context.Context, _ string, _ net.Addr, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	got := curl(t, env{dial: hang}, "-g", "--connect-timeout", "0.2", "-w", "%{http_code}", "http://10.0.0.1:80/")
	expect(t, got, 28, "000")
	if !strings.Contains(got.stderr, "Timeout was reached") {
		t.Fatalf("stderr %q", got.stderr)
	}
}

func TestEmptyReply(t *testing.T) {
	s := server(t, false)
	expect(t, curl(t, env{}, "-s", s.URL+"/hangup"), 52, "")
}

func TestHTTPS(t *testing.T) {
	s := server(t, true)
	expect(t, curl(t, env{}, "-s", s.URL+"/echo?msg=tls"), 60, "")
	expect(t, curl(t, env{}, "-sk", s.URL+"/echo?msg=tls"), 0, "tls")
	expect(t, curl(t, env{}, "-k", "-v", "-s", "-o", "/dev/null", "-w", "%{http_code}", s.URL+"/status/204"), 0, "204")
	// Plain HTTP to a TLS port is a TLS connect error the other way round.
	plain := server(t, false)
	expect(t, curl(t, env{}, "-sk", strings.Replace(plain.URL, "http://", "https://", 1)+"/echo"), 35, "")
}

func TestIPv6Literal(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "v6")
	}))
	s.Listener = l
	s.Start()
	defer s.Close()
	expect(t, curl(t, env{}, "-g", "-q", "-s", s.URL+"/"), 0, "v6")
}

func TestUsage(t *testing.T) {
	expect(t, curl(t, env{}, "--no-such-option", "http://x/"), 2, "")
	expect(t, curl(t, env{}, "-s"), 2, "")
	expect(t, curl(t, env{}, "--max-time"), 2, "")
	expect(t, curl(t, env{}, "--max-time", "soon", "http://x/"), 2, "")
	if got := curl(t, env{}, "--version"); got.code != 0 || !strings.HasPrefix(got.stdout, "curl "+version) {
		t.Fatalf("got %+v", got)
	}
}

// closedURL is an http URL on a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}
