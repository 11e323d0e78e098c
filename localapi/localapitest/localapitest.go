// Package localapitest provides an in-memory [localapi.Backend] for tests
// of the control API, its clients and the CLI.
package localapitest

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netext/netext/apitype"
	"github.com/netext/netext/localapi"
)

// Epoch is the fake clock's time unless Backend.SetClock was called.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

// Backend is an in-memory localapi.Backend. Sessions change state at once:
// Start goes through connecting to connected (or back to disconnected
// when a start error is set), Stop through disconnecting to disconnected,
// and every change is published to Events. It is safe for concurrent use.
type Backend struct {
	events *localapi.Events

	mu        sync.Mutex
	now       func() time.Time
	configs   map[string]*entry
	providers map[string]apitype.ProviderInfo
	startErr  map[string]string // name → provider error on start
	reply     func(name string, data []byte) ([]byte, error)
	options   map[string]map[string]any // last start options per name
	reasons   map[string]string         // last stop reason per name
}

type entry struct {
	conf   apitype.Configuration
	secret *apitype.Secret
	status apitype.SessionStatus
}

// New returns an empty Backend that publishes to events.
func New(events *localapi.Events) *Backend {
	return &Backend{
		events:    events,
		now:       func() time.Time { return Epoch },
		configs:   make(map[string]*entry),
		providers: make(map[string]apitype.ProviderInfo),
		startErr:  make(map[string]string),
		options:   make(map[string]map[string]any),
		reasons:   make(map[string]string),
	}
}

// SetClock makes the Backend read the time from now.
func (b *Backend) SetClock(now func() time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
}

// AddProvider installs a provider.
func (b *Backend) AddProvider(p apitype.ProviderInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.providers[p.ID] = p
}

// SetStartError makes the next starts of name fail with msg as the
// provider's error; "" clears it.
func (b *Backend) SetStartError(name, msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.startErr[name] = msg
}

// SetMessageHandler sets what SendMessage answers; by default it echoes.
func (b *Backend) SetMessageHandler(fn func(name string, data []byte) ([]byte, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reply = fn
}

// SetStatus sets and publishes a session's status as it is, for tests
// that need a state the fake does not reach by itself.
func (b *Backend) SetStatus(st apitype.SessionStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.configs[st.Name]; ok {
		e.status = st
	}
	b.events.Publish(st)
}

// Secret returns the stored secret of name.
func (b *Backend) Secret(name string) (apitype.Secret, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.configs[name]
	if !ok || e.secret == nil {
		return "", false
	}
	return *e.secret, true
}

// StartOptions returns the options of the last start of name.
func (b *Backend) StartOptions(name string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.options[name]
}

// StopReason returns the reason of the last stop of name.
func (b *Backend) StopReason(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reasons[name]
}

// Configurations implements localapi.Backend.
func (b *Backend) Configurations(context.Context) ([]apitype.Configuration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []apitype.Configuration
	for _, name := range slices.Sorted(maps.Keys(b.configs)) {
		out = append(out, b.configs[name].conf)
	}
	return out, nil
}

// Configuration implements localapi.Backend.
func (b *Backend) Configuration(_ context.Context, name string) (apitype.Configuration, error) {
	e, err := b.lookup(name)
	return e.conf, err
}

// CreateConfiguration implements localapi.Backend.
func (b *Backend) CreateConfiguration(_ context.Context, c apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.validateLocked(c); err != nil {
		return apitype.Configuration{}, err
	}
	if _, ok := b.configs[c.Name]; ok {
		return apitype.Configuration{}, apitype.Errorf(apitype.CodeExists, "configuration %s already exists", c.Name)
	}
	now := b.now()
	c.Generation, c.CreatedAt, c.ModifiedAt, c.HasSecret = 1, now, now, secret != nil
	e := &entry{conf: c, secret: secret, status: apitype.SessionStatus{
		Name: c.Name, Status: apitype.StatusDisconnected, ProviderID: c.ProviderID,
	}}
	b.configs[c.Name] = e
	b.events.Publish(e.status)
	return c, nil
}

// UpdateConfiguration implements localapi.Backend.
func (b *Backend) UpdateConfiguration(_ context.Context, c apitype.Configuration, secret *apitype.Secret) (apitype.Configuration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(c.Name)
	if err != nil {
		return apitype.Configuration{}, err
	}
	if err := staleLocked(e, c.Generation); err != nil {
		return apitype.Configuration{}, err
	}
	if err := b.validateLocked(c); err != nil {
		return apitype.Configuration{}, err
	}
	if secret != nil {
		e.secret = secret
	}
	c.Generation, c.CreatedAt, c.ModifiedAt, c.HasSecret = e.conf.Generation+1, e.conf.CreatedAt, b.now(), e.secret != nil
	e.conf = c
	return c, nil
}

// DeleteConfiguration implements localapi.Backend. A session that runs
// is refused with CodeConflict.
func (b *Backend) DeleteConfiguration(_ context.Context, name string, generation uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(name)
	if err != nil {
		return err
	}
	if generation != 0 {
		if err := staleLocked(e, generation); err != nil {
			return err
		}
	}
	if e.status.Status != apitype.StatusDisconnected {
		return apitype.Errorf(apitype.CodeConflict, "session %s is %s: stop it first", name, e.status.Status)
	}
	delete(b.configs, name)
	b.events.Publish(apitype.SessionStatus{Name: name, Status: apitype.StatusInvalid})
	return nil
}

// SetEnabled implements localapi.Backend.
func (b *Backend) SetEnabled(_ context.Context, name string, enabled bool, generation uint64) (apitype.Configuration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(name)
	if err != nil {
		return apitype.Configuration{}, err
	}
	if generation != 0 {
		if err := staleLocked(e, generation); err != nil {
			return apitype.Configuration{}, err
		}
	}
	if e.conf.Enabled != enabled {
		e.conf.Enabled = enabled
		e.conf.Generation++
		e.conf.ModifiedAt = b.now()
	}
	return e.conf, nil
}

// Start implements localapi.Backend.
func (b *Backend) Start(_ context.Context, name string, options map[string]any) (apitype.SessionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(name)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	if !e.conf.Enabled {
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeDisabled, "configuration %s is disabled: enable it first", name)
	}
	switch e.status.Status {
	case apitype.StatusConnecting, apitype.StatusConnected, apitype.StatusReasserting:
		return e.status, nil
	case apitype.StatusDisconnecting:
		return apitype.SessionStatus{}, apitype.Errorf(apitype.CodeConflict, "session %s is still disconnecting", name)
	}
	b.options[name] = options
	b.setLocked(e, apitype.SessionStatus{Name: name, Status: apitype.StatusConnecting, ProviderID: e.conf.ProviderID})
	if msg := b.startErr[name]; msg != "" {
		b.setLocked(e, apitype.SessionStatus{Name: name, Status: apitype.StatusDisconnected, ProviderID: e.conf.ProviderID,
			LastError: &apitype.LastError{Code: "providerFailed", Message: msg, At: b.now()}})
		return e.status, nil
	}
	at := b.now()
	b.setLocked(e, apitype.SessionStatus{Name: name, Status: apitype.StatusConnected, ProviderID: e.conf.ProviderID,
		ConnectedAt: &at, Interface: "netext0"})
	return e.status, nil
}

// Stop implements localapi.Backend.
func (b *Backend) Stop(_ context.Context, name, reason string) (apitype.SessionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(name)
	if err != nil {
		return apitype.SessionStatus{}, err
	}
	if e.status.Status == apitype.StatusDisconnected || e.status.Status == apitype.StatusDisconnecting {
		return e.status, nil
	}
	b.reasons[name] = reason
	b.setLocked(e, apitype.SessionStatus{Name: name, Status: apitype.StatusDisconnecting, ProviderID: e.conf.ProviderID})
	b.setLocked(e, apitype.SessionStatus{Name: name, Status: apitype.StatusDisconnected, ProviderID: e.conf.ProviderID})
	return e.status, nil
}

// Statuses implements localapi.Backend.
func (b *Backend) Statuses(context.Context) ([]apitype.SessionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []apitype.SessionStatus
	for _, name := range slices.Sorted(maps.Keys(b.configs)) {
		out = append(out, b.configs[name].status)
	}
	return out, nil
}

// Status implements localapi.Backend.
func (b *Backend) Status(_ context.Context, name string) (apitype.SessionStatus, error) {
	e, err := b.lookup(name)
	return e.status, err
}

// SendMessage implements localapi.Backend.
func (b *Backend) SendMessage(_ context.Context, name string, data []byte) ([]byte, error) {
	b.mu.Lock()
	e, err := b.lookupLocked(name)
	reply := b.reply
	var st apitype.Status
	if err == nil {
		st = e.status.Status
	}
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if st != apitype.StatusConnected && st != apitype.StatusReasserting {
		return nil, apitype.Errorf(apitype.CodeConflict, "session %s is %s: messages need a running session", name, st)
	}
	if reply == nil {
		return data, nil
	}
	return reply(name, data)
}

// Providers implements localapi.Backend.
func (b *Backend) Providers(context.Context) ([]apitype.ProviderInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []apitype.ProviderInfo
	for _, id := range slices.Sorted(maps.Keys(b.providers)) {
		out = append(out, b.providers[id])
	}
	return out, nil
}

func (b *Backend) setLocked(e *entry, st apitype.SessionStatus) {
	e.status = st
	b.events.Publish(st)
}

// lookup returns a copy of the entry of name, or the zero entry and
// CodeNotFound.
func (b *Backend) lookup(name string) (entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, err := b.lookupLocked(name)
	if err != nil {
		return entry{}, err
	}
	return *e, nil
}

func (b *Backend) lookupLocked(name string) (*entry, error) {
	e, ok := b.configs[name]
	if !ok {
		return nil, apitype.Errorf(apitype.CodeNotFound, "no configuration named %s", name)
	}
	return e, nil
}

func (b *Backend) validateLocked(c apitype.Configuration) error {
	var problems []string
	if !nameRE.MatchString(c.Name) || strings.HasPrefix(c.Name, "-") {
		problems = append(problems, "name: "+quote(c.Name)+": must be 1 to 64 characters of A-Z a-z 0-9 . _ - not starting with . or -")
	}
	if c.ProviderID == "" {
		problems = append(problems, "providerID: required")
	} else if _, ok := b.providers[c.ProviderID]; !ok && len(b.providers) > 0 {
		problems = append(problems, "providerID: "+quote(c.ProviderID)+": no such provider is installed")
	}
	if len(c.ProviderConfiguration) > 0 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(c.ProviderConfiguration, &obj) != nil {
			problems = append(problems, "providerConfiguration: must be a JSON object")
		}
	}
	switch c.RoutingMethod {
	case "", "destinationIP", "sourceApplication":
	default:
		problems = append(problems, "routingMethod: "+quote(c.RoutingMethod)+": must be destinationIP or sourceApplication")
	}
	if len(problems) > 0 {
		return apitype.Errorf(apitype.CodeInvalid, "%s", strings.Join(problems, "\n"))
	}
	return nil
}

func staleLocked(e *entry, generation uint64) error {
	if generation != e.conf.Generation {
		return apitype.Errorf(apitype.CodeStale,
			"configuration %s was changed since generation %d (now %d): reload it and try again",
			e.conf.Name, generation, e.conf.Generation)
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

var _ localapi.Backend = (*Backend)(nil)
