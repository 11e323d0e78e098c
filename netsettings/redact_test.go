package netsettings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestPasswordNeverPrinted prints settings holding a proxy password in every
// way a program might, and checks the password never shows.
func TestPasswordNeverPrinted(t *testing.T) {
	const secret = "s3cret-pw"
	s := fullSettings()
	if s.Proxy.HTTPServer.Password != secret {
		t.Fatal("fullSettings has no proxy password")
	}
	ps := *s.Proxy.HTTPServer
	px := *s.Proxy

	var outputs []string
	for _, v := range []any{s, *s, s.Proxy, px, &ps, ps} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			if _, isValue := v.(Settings); isValue {
				continue // only *Settings is a LogValuer; log pointers
			}
			if _, isValue := v.(Proxy); isValue {
				continue
			}
			var b bytes.Buffer
			slog.New(h(&b)).Info("settings", "value", v)
			outputs = append(outputs, b.String())
		}
	}
	outputs = append(outputs, s.String(), ps.String(), ps.GoString())

	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("password printed in:\n%s", out)
		}
	}

	// The redaction is visible, and the rest is still there.
	if got := ps.String(); got != `proxy.example.com:3128 auth user="alice" password=[redacted]` {
		t.Errorf("ProxyServer.String = %s", got)
	}
	if got := fmt.Sprintf("%#v", ps); got != `netsettings.ProxyServer{Address:proxy.example.com Port:3128 AuthenticationRequired:true Username:alice Password:[redacted]}` {
		t.Errorf("%%#v = %s", got)
	}
	if got := (ProxyServer{Address: "2001:db8::8", Port: 8080}).String(); got != "[2001:db8::8]:8080" {
		t.Errorf("ProxyServer.String = %s", got)
	}

	// The JSON encoding, which crosses the wire, keeps the password.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(secret)) {
		t.Error("json.Marshal dropped the password")
	}
	if s.Proxy.HTTPServer.Password != secret {
		t.Error("printing changed the password")
	}

	// A JSON log handler embeds the settings as an object.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("applying", "settings", s)
	var rec struct {
		Settings struct {
			Proxy struct {
				HTTPServer struct{ Password string } `json:"httpServer"`
			} `json:"proxy"`
			MTU int `json:"mtu"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(logged.Bytes(), &rec); err != nil {
		t.Fatalf("JSON log %s: %v", logged.Bytes(), err)
	}
	if rec.Settings.MTU != 1400 || rec.Settings.Proxy.HTTPServer.Password != "[redacted]" {
		t.Errorf("JSON log = %s", logged.Bytes())
	}
}
