// Command curl is a stand-in for curl(1) in the agnhost image that
// `hack/conformance images` builds (upstream's agnhost image is Alpine with a
// real curl; ours is busybox-static, which has none). The conformance suite
// runs curl inside agnhost containers, in exec hooks and `kubectl exec`
// commands, and reads its output and exit code, so this covers exactly what
// those commands use, with curl's behaviour:
//
//   - HTTP/1.1 over http:// and https:// (IPv6 literals in brackets; a URL
//     without a scheme is http), one transfer per URL given;
//   - the body to stdout (or -o FILE) byte for byte; -i/-I put the response
//     headers before it (-I sends HEAD); -w FORMAT is written after the
//     transfer, also when it failed (%{http_code} is then 000);
//   - curl's exit codes: 0, 2 (bad usage), 3 (bad URL), 6 (cannot resolve),
//     7 (cannot connect), 22 (-f and status >= 400), 23 (cannot write),
//     28 (timeout), 35 (TLS handshake), 45 (--interface), 47 (redirects),
//     52 (empty reply), 56 (receive failure), 60 (certificate);
//   - error messages "curl: (N) ..." on stderr unless -s (and no -S).
//
// Options: -s -S -q -g -f --fail-with-body -k -L --max-redirs -v -o -w
// --connect-timeout -m -X -d --data-raw --data-binary -H -I -i -A -u
// --interface -4 -6 --cacert -V -h, and the no-ops -N --http1.1
// --compressed --no-progress-meter. Short switches combine (-sIk, -Lo FILE,
// -XGET). Not done: URL globbing (always as -g), proxies, .curlrc, HTTP/2,
// the progress meter, cookies, uploads.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// version is the curl release whose command line this stands in for.
const version = "8.5.0"

// curl's exit codes (libcurl's CURLcode values) that this can return.
const (
	exitOK             = 0
	exitUnsupported    = 1
	exitUsage          = 2
	exitBadURL         = 3
	exitResolve        = 6
	exitConnect        = 7
	exitWeirdReply     = 8
	exitHTTPError      = 22
	exitWrite          = 23
	exitTimeout        = 28
	exitTLSConnect     = 35
	exitReadFile       = 26
	exitInterface      = 45
	exitTooManyRedirs  = 47
	exitEmptyReply     = 52
	exitRecv           = 56
	exitCertificate    = 60
	exitCACert         = 77
	defaultMaxRedirect = 50
)

type options struct {
	silent, showError, fail, failWithBody, insecure, location bool
	verbose, head, include, ipv4, ipv6, version, help         bool

	outputs        []string
	writeOut       *string
	connectTimeout time.Duration
	maxTime        time.Duration
	method         string
	data           []string
	headers        []string
	userAgent      *string
	user           *string
	iface          string
	cacert         string
	maxRedirs      int
	urls           []string

	stdin io.Reader // for -d @- and -w @-
}

// opt is one curl option: a switch (flag), an option with a value (set), or
// neither (accepted and ignored).
type opt struct {
	short byte
	long  string
	flag  func(*options) *bool
	set   func(*options, string) error
}

var opts = []opt{
	{'s', "silent", func(o *options) *bool { return &o.silent }, nil},
	{'S', "show-error", func(o *options) *bool { return &o.showError }, nil},
	{'q', "disable", nil, nil},
	{'g', "globoff", nil, nil},
	{'N', "no-buffer", nil, nil},
	{0, "http1.1", nil, nil},
	{0, "compressed", nil, nil},
	{0, "no-progress-meter", nil, nil},
	{'f', "fail", func(o *options) *bool { return &o.fail }, nil},
	{0, "fail-with-body", func(o *options) *bool { return &o.failWithBody }, nil},
	{'k', "insecure", func(o *options) *bool { return &o.insecure }, nil},
	{'L', "location", func(o *options) *bool { return &o.location }, nil},
	{'v', "verbose", func(o *options) *bool { return &o.verbose }, nil},
	{'I', "head", func(o *options) *bool { return &o.head }, nil},
	{'i', "include", func(o *options) *bool { return &o.include }, nil},
	{'4', "ipv4", func(o *options) *bool { return &o.ipv4 }, nil},
	{'6', "ipv6", func(o *options) *bool { return &o.ipv6 }, nil},
	{'V', "version", func(o *options) *bool { return &o.version }, nil},
	{'h', "help", func(o *options) *bool { return &o.help }, nil},
	{'o', "output", nil, func(o *options, v string) error { o.outputs = append(o.outputs, v); return nil }},
	{'w', "write-out", nil, setWriteOut},
	{0, "connect-timeout", nil, func(o *options, v string) error { return seconds(v, &o.connectTimeout) }},
	{'m', "max-time", nil, func(o *options, v string) error { return seconds(v, &o.maxTime) }},
	{0, "max-redirs", nil, func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("expected a proper numerical parameter")
		}
		o.maxRedirs = n
		return nil
	}},
	{'X', "request", nil, func(o *options, v string) error { o.method = v; return nil }},
	{'d', "data", nil, func(o *options, v string) error { return o.addData(v, true, true) }},
	{0, "data-ascii", nil, func(o *options, v string) error { return o.addData(v, true, true) }},
	{0, "data-binary", nil, func(o *options, v string) error { return o.addData(v, true, false) }},
	{0, "data-raw", nil, func(o *options, v string) error { return o.addData(v, false, false) }},
	{'H', "header", nil, func(o *options, v string) error { o.headers = append(o.headers, v); return nil }},
	{'A', "user-agent", nil, func(o *options, v string) error { o.userAgent = &v; return nil }},
	{'u', "user", nil, func(o *options, v string) error { o.user = &v; return nil }},
	{0, "interface", nil, func(o *options, v string) error { o.iface = v; return nil }},
	{0, "cacert", nil, func(o *options, v string) error { o.cacert = v; return nil }},
}

func seconds(v string, d *time.Duration) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return errors.New("expected a proper numerical parameter")
	}
	*d = time.Duration(f * float64(time.Second))
	return nil
}

// readArg reads an @FILE argument (@- is stdin).
func (o *options) readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(o.stdin)
	}
	return os.ReadFile(name)
}

func setWriteOut(o *options, v string) error {
	if strings.HasPrefix(v, "@") {
		b, err := o.readArg(v[1:])
		if err != nil {
			return err
		}
		v = string(b)
	}
	o.writeOut = &v
	return nil
}

// addData is -d and its variants: @FILE reads a file (at), and -d drops the
// file's carriage returns and newlines (strip) as curl does.
func (o *options) addData(v string, at, strip bool) error {
	if at && strings.HasPrefix(v, "@") {
		b, err := o.readArg(v[1:])
		if err != nil {
			return err
		}
		if strip {
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
		v = string(b)
	}
	o.data = append(o.data, v)
	return nil
}

// parse reads curl's command line: long options take their value from the
// next argument; short switches combine, and a short option with a value
// takes the rest of its argument or the next one.
func parse(args []string, stdin io.Reader) (*options, error) {
	o := &options{maxRedirs: defaultMaxRedirect, stdin: stdin}
	byShort, byLong := map[byte]opt{}, map[string]opt{}
	for _, p := range opts {
		if p.short != 0 {
			byShort[p.short] = p
		}
		byLong[p.long] = p
	}
	apply := func(p opt, name string, inline string, hasInline bool, i *int, on bool) error {
		switch {
		case p.flag != nil:
			*p.flag(o) = on
		case p.set != nil:
			v := inline
			if !hasInline {
				if *i+1 >= len(args) {
					return fmt.Errorf("option %s: requires parameter", name)
				}
				*i++
				v = args[*i]
			}
			if err := p.set(o, v); err != nil {
				return fmt.Errorf("option %s: %v", name, err)
			}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, on := a[2:], true
			p, ok := byLong[name]
			if !ok && strings.HasPrefix(name, "no-") {
				p, ok = byLong[name[3:]]
				ok = ok && p.flag != nil
				on = false
			}
			if !ok {
				return nil, fmt.Errorf("option %s: is unknown", a)
			}
			if err := apply(p, a, "", false, &i, on); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				p, ok := byShort[a[j]]
				if !ok {
					return nil, fmt.Errorf("option -%c: is unknown", a[j])
				}
				rest := a[j+1:]
				if err := apply(p, "-"+string(a[j]), rest, rest != "", &i, true); err != nil {
					return nil, err
				}
				if p.set != nil {
					break
				}
			}
		default:
			o.urls = append(o.urls, a)
		}
	}
	return o, nil
}

// env is what a run touches outside itself; tests replace the network.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resolve        func(ctx context.Context, network, host string) ([]net.IP, error)
	dial           func(ctx context.Context, network string, local net.Addr, addr string) (net.Conn, error)
}

func main() {
	os.Exit(run(os.Args[1:], env{
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		resolve: net.DefaultResolver.LookupIP,
		dial: func(ctx context.Context, network string, local net.Addr, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: local}
			return d.DialContext(ctx, network, addr)
		},
	}))
}

func run(args []string, e env) int {
	o, err := parse(args, e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "curl: %v\ncurl: try 'curl --help' for more information\n", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintf(e.stdout, "curl %s (%s-pc-linux-gnu) ironkube stand-in (Go %s)\n"+
			"Protocols: http https\nFeatures: IPv6 SSL\n", version, arch(), runtime.Version())
		return exitOK
	}
	if o.help {
		fmt.Fprintf(e.stdout, "Usage: curl [options...] <url>\n(ironkube stand-in) options: "+
			"-s -S -q -g -f --fail-with-body -k -L --max-redirs N -v -o FILE -w FORMAT "+
			"--connect-timeout SECS -m SECS -X METHOD -d DATA --data-raw --data-binary "+
			"-H HEADER -I -i -A AGENT -u USER:PASS --interface IF -4 -6 --cacert FILE -V\n")
		return exitOK
	}
	if len(o.urls) == 0 {
		fmt.Fprintln(e.stderr, "curl: no URL specified!\ncurl: try 'curl --help' for more information")
		return exitUsage
	}
	code := exitOK
	for i, u := range o.urls {
		out := ""
		if i < len(o.outputs) {
			out = o.outputs[i]
		}
		t := &transfer{o: o, e: e, rawURL: u, outPath: out, start: time.Now()}
		code = t.run()
	}
	return code
}

// arch is the machine name of curl's target triplet.
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// curlError is a failed transfer: curl's exit code and message.
type curlError struct {
	code int
	msg  string
}

func (c *curlError) Error() string { return c.msg }

func fail(code int, format string, a ...any) *curlError {
	return &curlError{code: code, msg: fmt.Sprintf(format, a...)}
}

// transfer is one URL's request(s) and what -w reports about them.
type transfer struct {
	o       *options
	e       env
	rawURL  string
	outPath string
	start   time.Time

	out          *output
	url          *url.URL
	method       string
	status       int
	proto        string
	contentType  string
	remoteIP     string
	remotePort   string
	redirects    int
	sizeDownload int64
	sizeHeader   int64
}

func (t *transfer) run() int {
	err := t.do()
	code := exitOK
	if err != nil {
		code = err.code
		if !t.o.silent || t.o.showError {
			fmt.Fprintf(t.e.stderr, "curl: (%d) %s\n", err.code, err.msg)
		}
	}
	if t.out != nil {
		if cerr := t.out.close(); cerr != nil && code == exitOK {
			code = exitWrite
		}
	}
	if t.o.writeOut != nil {
		t.writeOut(*t.o.writeOut, code, err)
	}
	return code
}

func (t *transfer) elapsedMS() int64 { return time.Since(t.start).Milliseconds() }

func (t *transfer) do() *curlError {
	raw := t.rawURL
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail(exitBadURL, "URL rejected: Malformed input to a URL function")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail(exitUnsupported, "Protocol %q not supported", u.Scheme)
	}
	if u.Hostname() == "" {
		return fail(exitBadURL, "URL rejected: No host part in the URL")
	}
	t.url = u

	ctx := context.Background()
	if t.o.maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.maxTime)
		defer cancel()
	}
	tlsConf, cerr := t.tlsConfig()
	if cerr != nil {
		return cerr
	}
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:       nil,
			DialContext: t.dialContext,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return t.dialTLS(ctx, addr, tlsConf)
			},
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	var body []byte
	method := "GET"
	switch {
	case t.o.head:
		method = "HEAD"
	case len(t.o.data) > 0:
		method = "POST"
		body = []byte(strings.Join(t.o.data, "&"))
	}
	if t.o.method != "" {
		method = t.o.method
	}
	user := t.o.user

	for {
		t.method = method
		req, err := t.request(ctx, method, body, user)
		if err != nil {
			return err
		}
		resp, derr := client.Do(req)
		if derr != nil {
			return t.classify(ctx, derr)
		}
		t.status, t.proto = resp.StatusCode, resp.Proto
		t.contentType = resp.Header.Get("Content-Type")
		if t.o.verbose {
			t.writeHeaders(t.e.stderr, resp, "< ")
		}
		if t.out == nil {
			t.out = &output{path: t.outPath, stdout: t.e.stdout}
		}
		if t.o.include || t.o.head {
			n, err := t.writeHeaders(t.out, resp, "")
			t.sizeHeader += n
			if err != nil {
				resp.Body.Close()
				return fail(exitWrite, "Failure writing output to destination")
			}
		}
		next, ok := t.redirect(resp)
		if ok {
			resp.Body.Close()
			t.redirects++
			if t.o.maxRedirs >= 0 && t.redirects > t.o.maxRedirs {
				return fail(exitTooManyRedirs, "Maximum (%d) redirects followed", t.o.maxRedirs)
			}
			// POST becomes GET on 301/302/303, as curl does without
			// --post30x, unless -X named the method.
			if t.o.method == "" && method != "HEAD" &&
				(resp.StatusCode == http.StatusSeeOther || method == "POST") &&
				resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
				method, body = "GET", nil
			}
			if next.Host != t.url.Host {
				user = nil // credentials stay with the host they were given for
			}
			t.url = next
			continue
		}
		defer resp.Body.Close()
		if (t.o.fail || t.o.failWithBody) && resp.StatusCode >= 400 {
			if t.o.failWithBody {
				if err := t.copyBody(ctx, resp); err != nil {
					return err
				}
			}
			return fail(exitHTTPError, "The requested URL returned error: %d", resp.StatusCode)
		}
		if t.o.head {
			return nil
		}
		return t.copyBody(ctx, resp)
	}
}

func (t *transfer) request(ctx context.Context, method string, body []byte, user *string) (*http.Request, *curlError) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.url.String(), rd)
	if err != nil {
		return nil, fail(exitBadURL, "URL rejected: %v", err)
	}
	ua := "curl/" + version
	if t.o.userAgent != nil {
		ua = *t.o.userAgent
	}
	req.Header.Set("User-Agent", ua) // empty: Go sends none, as curl
	req.Header.Set("Accept", "*/*")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != nil {
		name, pass, _ := strings.Cut(*user, ":")
		req.SetBasicAuth(name, pass)
	}
	for _, h := range t.o.headers {
		// "Name: value" sets, "Name:" removes, "Name;" sends it empty.
		name, value, found := strings.Cut(h, ":")
		empty := false
		if !found {
			n, ok := strings.CutSuffix(h, ";")
			if !ok {
				continue // curl ignores a header line without either
			}
			name, empty = n, true
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Host"):
			if value != "" {
				req.Host = value
			}
		case value == "" && !empty:
			if strings.EqualFold(name, "User-Agent") {
				req.Header.Set("User-Agent", "")
			} else {
				req.Header.Del(name)
			}
		default:
			req.Header.Set(name, value)
		}
	}
	if t.o.verbose {
		host := req.Host
		if host == "" {
			host = req.URL.Host
		}
		fmt.Fprintf(t.e.stderr, "> %s %s HTTP/1.1\r\n> Host: %s\r\n", method, req.URL.RequestURI(), host)
		writeHeaderLines(t.e.stderr, req.Header, "> ")
		fmt.Fprint(t.e.stderr, ">\r\n")
	}
	return req, nil
}

// redirect is where -L goes next, if it goes anywhere.
func (t *transfer) redirect(resp *http.Response) (*url.URL, bool) {
	if !t.o.location || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, false
	}
	next, err := resp.Location()
	if err != nil {
		return nil, false
	}
	return next, true
}

// writeHeaders writes the status line and headers as curl -i shows them
// (names as Go canonicalises them, sorted; Go does not keep wire order).
func (t *transfer) writeHeaders(w io.Writer, resp *http.Response, prefix string) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s %s\r\n", prefix, resp.Proto, resp.Status)
	h := resp.Header.Clone()
	if len(resp.TransferEncoding) > 0 {
		h["Transfer-Encoding"] = resp.TransferEncoding
	}
	writeHeaderLines(&b, h, prefix)
	fmt.Fprintf(&b, "%s\r\n", strings.TrimSpace(prefix))
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func writeHeaderLines(w io.Writer, h http.Header, prefix string) {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, v := range h[n] {
			if n == "User-Agent" && v == "" {
				continue
			}
			fmt.Fprintf(w, "%s%s: %s\r\n", prefix, n, v)
		}
	}
}

func (t *transfer) copyBody(ctx context.Context, resp *http.Response) *curlError {
	n, err := io.Copy(t.out, resp.Body)
	t.sizeDownload += n
	switch {
	case err == nil:
		return t.out.ensure()
	case t.out.err != nil:
		return fail(exitWrite, "Failure writing output to destination")
	case ctx.Err() != nil || isTimeout(err):
		return fail(exitTimeout, "Operation timed out after %d milliseconds with %d bytes received", t.elapsedMS(), t.sizeDownload)
	default:
		return fail(exitRecv, "Failure when receiving data from the peer")
	}
}

// classify turns a failed request into curl's exit code.
func (t *transfer) classify(ctx context.Context, err error) *curlError {
	var ce *curlError
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case ctx.Err() != nil || isTimeout(err):
		return fail(exitTimeout, "Operation timed out after %d milliseconds with %d bytes received", t.elapsedMS(), t.sizeDownload)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fail(exitEmptyReply, "Empty reply from server")
	case strings.Contains(err.Error(), "malformed HTTP"):
		return fail(exitWeirdReply, "Weird server reply")
	default:
		return fail(exitRecv, "Failure when receiving data from the peer: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// connectContext bounds connecting (TCP and TLS) by --connect-timeout.
func (t *transfer) connectContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.o.connectTimeout > 0 {
		return context.WithTimeout(ctx, t.o.connectTimeout)
	}
	return context.WithCancel(ctx)
}

func (t *transfer) dialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	cctx, cancel := t.connectContext(ctx)
	defer cancel()
	return t.connect(cctx, addr)
}

func (t *transfer) dialTLS(ctx context.Context, addr string, conf *tls.Config) (net.Conn, error) {
	cctx, cancel := t.connectContext(ctx)
	defer cancel()
	conn, err := t.connect(cctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(cctx); err != nil {
		conn.Close()
		var cve *tls.CertificateVerificationError
		switch {
		case cctx.Err() != nil:
			return nil, fail(exitTimeout, "SSL connection timeout after %d milliseconds", t.elapsedMS())
		case errors.As(err, &cve):
			return nil, fail(exitCertificate, "SSL certificate problem: %v", cve.Err)
		default:
			return nil, fail(exitTLSConnect, "TLS connect error: %v", err)
		}
	}
	return tc, nil
}

// connect resolves the host and connects to its addresses in turn.
func (t *transfer) connect(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fail(exitBadURL, "URL rejected: %v", err)
	}
	ips, err := t.lookup(ctx, host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail(exitTimeout, "Resolving timed out after %d milliseconds", t.elapsedMS())
		}
		return nil, fail(exitResolve, "Could not resolve host: %s", host)
	}
	var last error
	for _, ip := range ips {
		local, cerr := t.localAddr(ip)
		if cerr != nil {
			return nil, cerr
		}
		target := net.JoinHostPort(ip.String(), port)
		if t.o.verbose {
			fmt.Fprintf(t.e.stderr, "*   Trying %s...\n", target)
		}
		conn, err := t.e.dial(ctx, "tcp", local, target)
		if err == nil {
			t.remoteIP, t.remotePort = ip.String(), port
			if t.o.verbose {
				fmt.Fprintf(t.e.stderr, "* Connected to %s (%s) port %s\n", host, ip, port)
			}
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	reason := "Couldn't connect to server"
	code := exitConnect
	if ctx.Err() != nil || isTimeout(last) {
		reason, code = "Timeout was reached", exitTimeout
	}
	if t.o.verbose && last != nil {
		fmt.Fprintf(t.e.stderr, "* connect: %v\n", last)
	}
	return nil, fail(code, "Failed to connect to %s port %s after %d ms: %s", host, port, t.elapsedMS(), reason)
}

// lookup resolves a host as curl does: IP literals as they are, localhost
// (and *.localhost) to the loopback addresses without asking DNS.
func (t *transfer) lookup(ctx context.Context, host string) ([]net.IP, error) {
	var ips []net.IP
	switch {
	case net.ParseIP(host) != nil:
		ips = []net.IP{net.ParseIP(host)}
	case strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost"):
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	default:
		network := "ip"
		if t.o.ipv4 && !t.o.ipv6 {
			network = "ip4"
		} else if t.o.ipv6 && !t.o.ipv4 {
			network = "ip6"
		}
		found, err := t.e.resolve(ctx, network, host)
		if err != nil {
			return nil, err
		}
		ips = found
	}
	kept := ips[:0:0]
	for _, ip := range ips {
		v4 := ip.To4() != nil
		if (t.o.ipv4 && !t.o.ipv6 && !v4) || (t.o.ipv6 && !t.o.ipv4 && v4) {
			continue
		}
		kept = append(kept, ip)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("no usable address for %s", host)
	}
	return kept, nil
}

// localAddr is --interface: an IP address, an interface name (its first
// address of the target's family) or a host name; "if!" and "host!"
// prefixes say which.
func (t *transfer) localAddr(target net.IP) (net.Addr, *curlError) {
	v := t.o.iface
	if v == "" {
		return nil, nil
	}
	bad := fail(exitInterface, "Couldn't bind to '%s'", v)
	wantV4 := target.To4() != nil
	pick := func(ips []net.IP) net.Addr {
		for _, ip := range ips {
			if (ip.To4() != nil) == wantV4 {
				return &net.TCPAddr{IP: ip}
			}
		}
		return nil
	}
	name, isIf := strings.CutPrefix(v, "if!")
	name, isHost := strings.CutPrefix(name, "host!")
	if ip := net.ParseIP(name); ip != nil {
		return &net.TCPAddr{IP: ip}, nil
	}
	if !isHost {
		if ifc, err := net.InterfaceByName(name); err == nil {
			addrs, _ := ifc.Addrs()
			var ips []net.IP
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					ips = append(ips, n.IP)
				}
			}
			if a := pick(ips); a != nil {
				return a, nil
			}
			return nil, bad
		}
	}
	if isIf {
		return nil, bad
	}
	ips, err := t.e.resolve(context.Background(), "ip", name)
	if err != nil {
		return nil, bad
	}
	if a := pick(ips); a != nil {
		return a, nil
	}
	return nil, bad
}

func (t *transfer) tlsConfig() (*tls.Config, *curlError) {
	conf := &tls.Config{
		ServerName:         t.url.Hostname(),
		InsecureSkipVerify: t.o.insecure, // #nosec G402 -- curl -k asks for exactly this
		NextProtos:         []string{"http/1.1"},
	}
	if t.o.cacert != "" {
		pem, err := os.ReadFile(t.o.cacert)
		if err != nil {
			return nil, fail(exitReadFile, "error reading CA cert file %s: %v", t.o.cacert, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail(exitCACert, "error setting certificate file: %s", t.o.cacert)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// writeOut expands a -w format: %{variable}, %% and the escapes \n \r \t \\.
func (t *transfer) writeOut(format string, code int, err *curlError) {
	w := t.e.stdout
	var b strings.Builder
	flush := func() {
		io.WriteString(w, b.String())
		b.Reset()
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '\\' && i+1 < len(format):
			i++
			switch format[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\':
				b.WriteByte('\\')
			default:
				b.WriteByte('\\')
				b.WriteByte(format[i])
			}
		case c == '%' && i+1 < len(format) && format[i+1] == '%':
			i++
			b.WriteByte('%')
		case c == '%' && i+1 < len(format) && format[i+1] == '{':
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				b.WriteString(format[i:])
				i = len(format)
				continue
			}
			name := format[i+2 : i+end]
			i += end
			switch name {
			case "stdout":
				flush()
				w = t.e.stdout
			case "stderr":
				flush()
				w = t.e.stderr
			default:
				v, ok := t.variable(name, code, err)
				if !ok {
					fmt.Fprintf(t.e.stderr, "curl: unknown --write-out variable: '%s'\n", name)
				}
				b.WriteString(v)
			}
		default:
			b.WriteByte(c)
		}
	}
	flush()
}

func (t *transfer) variable(name string, code int, err *curlError) (string, bool) {
	switch name {
	case "http_code", "response_code":
		return fmt.Sprintf("%03d", t.status), true
	case "http_version":
		if t.proto == "" {
			return "0", true
		}
		return strings.TrimPrefix(t.proto, "HTTP/"), true
	case "exitcode":
		return strconv.Itoa(code), true
	case "errormsg":
		if err == nil {
			return "", true
		}
		return err.msg, true
	case "size_download":
		return strconv.FormatInt(t.sizeDownload, 10), true
	case "size_header":
		return strconv.FormatInt(t.sizeHeader, 10), true
	case "time_total":
		return fmt.Sprintf("%.6f", time.Since(t.start).Seconds()), true
	case "url":
		return t.rawURL, true
	case "url_effective":
		if t.url == nil {
			return t.rawURL, true
		}
		return t.url.String(), true
	case "method":
		return t.method, true
	case "scheme":
		if t.url == nil {
			return "", true
		}
		return strings.ToUpper(t.url.Scheme), true
	case "remote_ip":
		return t.remoteIP, true
	case "remote_port":
		return t.remotePort, true
	case "content_type":
		return t.contentType, true
	case "num_redirects":
		return strconv.Itoa(t.redirects), true
	}
	return "", false
}

// output is stdout or -o FILE, the file created when the response arrives
// (as curl, a failed connection leaves no file behind).
type output struct {
	path   string
	stdout io.Writer
	f      *os.File
	err    error
}

func (o *output) writer() (io.Writer, error) {
	if o.path == "" || o.path == "-" {
		return o.stdout, nil
	}
	if o.f == nil && o.err == nil {
		o.f, o.err = os.Create(o.path)
	}
	return o.f, o.err
}

func (o *output) Write(p []byte) (int, error) {
	w, err := o.writer()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

// ensure creates an -o file even when the body was empty.
func (o *output) ensure() *curlError {
	if _, err := o.writer(); err != nil {
		return fail(exitWrite, "Failure writing output to destination")
	}
	return nil
}

func (o *output) close() error {
	if o.f == nil {
		return nil
	}
	return o.f.Close()
}
