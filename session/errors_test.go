package session

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNoAnswer(t *testing.T) {
	err := noAnswer("app message", 10*time.Second)
	if got, want := err.Error(), "session: app message: the provider did not answer within 10s"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("does not match context.DeadlineExceeded")
	}
}
