package admin

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A minimal W3C WebDriver client, enough to drive Debian's chromium
// through chromedriver from a test: one session, navigate, run a script,
// resize, screenshot. Every call is plain JSON over HTTP on loopback.

// Bounds for the browser processes, well above what they need on an idle
// machine but short enough to keep the whole test under 30 s.
const (
	driverStartTimeout = 10 * time.Second // chromedriver up and listening
	driverCallTimeout  = 15 * time.Second // one WebDriver command (a new session starts chromium)
	driverQuitTimeout  = 3 * time.Second  // closing the session at cleanup; the kill follows anyway
)

// chromiumArgs make chromium run headless as root in a container,
// without reaching for the network on its own (updates, sync, field
// trials), so the test talks to loopback only.
var chromiumArgs = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--no-first-run", "--disable-background-networking", "--disable-component-update",
	"--disable-sync", "--disable-default-apps", "--disable-extensions",
	"--no-default-browser-check", "--disable-breakpad", "--metrics-recording-only",
}

// webDriver is one chromedriver process and, once opened, one session.
type webDriver struct {
	base    string // http://127.0.0.1:port
	session string
	client  *http.Client
}

// needBrowser returns the paths of chromium and chromedriver, or skips
// the test (fails it under CI=true, where both must be installed).
func needBrowser(t *testing.T) (chromium, chromedriver string) {
	t.Helper()
	var missing []string
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		missing = append(missing, "chromium")
	}
	chromedriver, err = exec.LookPath("chromedriver")
	if err != nil {
		missing = append(missing, "chromedriver (Debian package chromium-driver)")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s not found: apt-get install chromium chromium-driver", strings.Join(missing, " and "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true, so this fails)")
		}
		t.Skip(msg)
	}
	return chromium, chromedriver
}

// startWebDriver starts chromedriver on a free loopback port and opens a
// session with a headless chromium, given extra command-line arguments
// besides chromiumArgs. Cleanup ends the session and kills chromedriver's
// whole process group, chromium with it.
func startWebDriver(t *testing.T, chromium, chromedriver string, extra ...string) *webDriver {
	t.Helper()
	cmd := exec.Command(chromedriver, "--port=0")
	// Its own process group, so cleanup can kill chromium too should the
	// session not end cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromedriver: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})

	port, err := driverPort(stdout)
	if err != nil {
		// Its stderr is whole, and no longer written, once it has exited.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		t.Fatalf("chromedriver: %v; stderr: %s", err, stderr.String())
	}
	d := &webDriver{base: "http://127.0.0.1:" + port, client: &http.Client{Timeout: driverCallTimeout}}

	var created struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args":   slices.Concat(chromiumArgs, extra, []string{"--user-data-dir=" + t.TempDir()}),
		},
	}}}
	if err := d.call("POST", "/session", caps, &created); err != nil {
		t.Fatalf("new session: %v", err)
	}
	d.session = created.SessionID
	t.Cleanup(func() {
		// Before the process group is killed: let chromedriver close
		// chromium and remove its files itself, if it does so quickly.
		d.client.Timeout = driverQuitTimeout
		d.call("DELETE", "/session/"+d.session, nil, nil)
	})
	return d
}

// driverPort reads chromedriver's output until it says which port it
// listens on.
func driverPort(stdout io.Reader) (string, error) {
	started := regexp.MustCompile(`started successfully on port (\d+)`)
	found := make(chan string, 1)
	go func() {
		defer close(found)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				io.Copy(io.Discard, stdout) // keep its pipe drained
				return
			}
		}
	}()
	select {
	case port, ok := <-found:
		if !ok {
			return "", fmt.Errorf("exited without saying its port")
		}
		return port, nil
	case <-time.After(driverStartTimeout):
		return "", fmt.Errorf("not started after %v", driverStartTimeout)
	}
}

// call sends one WebDriver command and decodes its "value" into out.
func (d *webDriver) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return fmt.Errorf("%s %s: decoding reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(reply.Value, &e)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, out)
}

// navigate loads url and waits for its load event.
func (d *webDriver) navigate(url string) error {
	return d.call("POST", "/session/"+d.session+"/url", map[string]string{"url": url}, nil)
}

// execute runs script (a function body) in the page and decodes what it
// returns into out.
func (d *webDriver) execute(script string, out any) error {
	return d.call("POST", "/session/"+d.session+"/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// cdp sends one Chrome DevTools Protocol command through chromedriver's
// passthrough (chromedriver's own endpoint, not W3C WebDriver).
func (d *webDriver) cdp(cmd string, params map[string]any) error {
	return d.call("POST", "/session/"+d.session+"/goog/cdp/execute", map[string]any{"cmd": cmd, "params": params}, nil)
}

// emulate makes the page's viewport a device's: width and height in CSS
// pixels; mobile honours the viewport meta tag as a phone does.
func (d *webDriver) emulate(width, height int, scale float64, mobile bool) error {
	return d.cdp("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile,
	})
}

// disableScript turns JavaScript off for the pages loaded from now on.
func (d *webDriver) disableScript() error {
	return d.cdp("Emulation.setScriptExecutionDisabled", map[string]any{"value": true})
}

// screenshot returns a PNG of the viewport.
func (d *webDriver) screenshot() ([]byte, error) {
	var b64 string
	if err := d.call("GET", "/session/"+d.session+"/screenshot", nil, &b64); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}
