package apitype_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/netext/netext/apitype"
)

func TestSecretRedacts(t *testing.T) {
	s := apitype.Secret("hunter2")
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %#v %+v", s, s, s, s, s, s),
		fmt.Sprintf("%v", apitype.CreateRequest{Secret: &s}), fmt.Sprintf("%+v", struct{ S apitype.Secret }{s}),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	if strings.Contains(logged.String(), "hunter2") {
		t.Errorf("secret logged: %s", logged.String())
	}
	// JSON keeps it: the request carries it to the daemon.
	b, _ := json.Marshal(apitype.CreateRequest{Secret: &s})
	if !strings.Contains(string(b), `"secret":"hunter2"`) {
		t.Errorf("secret missing from the request: %s", b)
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("saving: %w", apitype.Errorf(apitype.CodeStale, "changed since generation %d", 3))
	if !errors.Is(err, apitype.ErrStale) || errors.Is(err, apitype.ErrNotFound) {
		t.Errorf("errors.Is by code does not work")
	}
	if !apitype.IsCode(err, apitype.CodeStale) || err.Error() != "saving: changed since generation 3" {
		t.Errorf("IsCode or message: %v", err)
	}
	if (&apitype.Error{Code: apitype.CodeBusy}).Error() != "busy" {
		t.Errorf("message of an error without one")
	}
}

func TestCodeStatusRoundTrip(t *testing.T) {
	// Every code that has its own status comes back from that status.
	for _, c := range []apitype.ErrorCode{
		apitype.CodeInvalid, apitype.CodeForbidden, apitype.CodeNotFound, apitype.CodeMethod, apitype.CodeConflict,
		apitype.CodeTooLarge, apitype.CodeBusy, apitype.CodeProviderError, apitype.CodeUnavailable,
		apitype.CodeTimeout, apitype.CodeInternal,
	} {
		if got := apitype.CodeForStatus(c.HTTPStatus()); got != c {
			t.Errorf("%s → %d → %s", c, c.HTTPStatus(), got)
		}
	}
	if apitype.ErrorCode("new").HTTPStatus() != 500 {
		t.Errorf("unknown code is not 500")
	}
}
