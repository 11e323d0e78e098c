package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/netext/netext/apitype"
)

// route is one entry of the handler table.
type route struct {
	pattern string
	serve   func(s *Server, w http.ResponseWriter, r *http.Request)
}

// routes is the handler table: every endpoint of the API. Each handler
// checks the method and the caller's permission first.
var routes = []route{
	{"/v0/configurations", (*Server).serveConfigurations},         // GET list, POST create
	{"/v0/configurations/{name}", (*Server).serveConfiguration},   // GET, PUT update, DELETE
	{"/v0/configurations/{name}/enable", (*Server).serveEnable},   // POST
	{"/v0/configurations/{name}/disable", (*Server).serveDisable}, // POST
	{"/v0/sessions", (*Server).serveStatuses},                     // GET
	{"/v0/sessions/{name}", (*Server).serveStatus},                // GET
	{"/v0/sessions/{name}/start", (*Server).serveStart},           // POST
	{"/v0/sessions/{name}/stop", (*Server).serveStop},             // POST
	{"/v0/sessions/{name}/message", (*Server).serveMessage},       // POST
	{"/v0/sessions/{name}/last-error", (*Server).serveLastError},  // GET
	{"/v0/providers", (*Server).serveProviders},                   // GET
	{"/v0/watch", (*Server).serveWatch},                           // GET, JSON lines
	{"/", (*Server).serveUnknown},                                 // everything else: 404
}

func (s *Server) serveUnknown(w http.ResponseWriter, r *http.Request) {
	writeError(w, apitype.Errorf(apitype.CodeNotFound, "no endpoint %s", r.URL.Path))
}

// method reports whether r uses method, and answers 405 if not.
func method(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, apitype.Errorf(apitype.CodeMethod, "%s %s: want %s", r.Method, r.URL.Path, method))
	return false
}

// permitWrite reports whether the caller may change things, and answers
// 403 if not.
func (s *Server) permitWrite(w http.ResponseWriter, r *http.Request) bool {
	c := callerFrom(r.Context())
	if c.write {
		return true
	}
	if !c.known {
		writeError(w, apitype.Errorf(apitype.CodeForbidden,
			"permission denied: the caller could not be identified (%v), so it may only read", c.err))
		return false
	}
	writeError(w, apitype.Errorf(apitype.CodeForbidden,
		"permission denied: changing configurations and sessions needs root or membership in group %s (uid %d is neither)",
		s.group, c.id.UID))
	return false
}

func (s *Server) serveConfigurations(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.serveCreate(w, r)
	default:
		s.serveList(w, r)
	}
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	cs, err := s.backend.Configurations(r.Context())
	s.answer(w, r, apitype.ConfigurationList{Configurations: nonNil(cs)}, err)
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request) {
	var req apitype.CreateRequest
	if !s.change(w, r, http.MethodPost, &req, false) {
		return
	}
	if req.Configuration.Name == "" {
		writeError(w, apitype.Errorf(apitype.CodeInvalid, "configuration.name: required"))
		return
	}
	c, err := s.backend.CreateConfiguration(r.Context(), req.Configuration, req.Secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("configuration created", "name", c.Name, "by", who(r))
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) serveConfiguration(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
		s.serveUpdate(w, r)
	case http.MethodDelete:
		s.serveDelete(w, r)
	default:
		s.serveGet(w, r)
	}
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	c, err := s.backend.Configuration(r.Context(), r.PathValue("name"))
	s.answer(w, r, c, err)
}

func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request) {
	var req apitype.UpdateRequest
	if !s.change(w, r, http.MethodPut, &req, false) {
		return
	}
	name := r.PathValue("name")
	switch {
	case req.Configuration.Name == "":
		req.Configuration.Name = name
	case req.Configuration.Name != name:
		writeError(w, apitype.Errorf(apitype.CodeInvalid,
			"configuration.name: %q differs from %q in the path: renaming is not supported", req.Configuration.Name, name))
		return
	}
	if req.Configuration.Generation == 0 {
		writeError(w, apitype.Errorf(apitype.CodeInvalid,
			"configuration.generation: required: send the generation of the configuration the change is based on"))
		return
	}
	c, err := s.backend.UpdateConfiguration(r.Context(), req.Configuration, req.Secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("configuration updated", "name", c.Name, "generation", c.Generation, "by", who(r))
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodDelete) || !s.permitWrite(w, r) {
		return
	}
	var gen uint64
	if v := r.URL.Query().Get("generation"); v != "" {
		var err error
		if gen, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, apitype.Errorf(apitype.CodeInvalid, "generation: %q: not a number", v))
			return
		}
	}
	name := r.PathValue("name")
	if err := s.backend.DeleteConfiguration(r.Context(), name, gen); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("configuration deleted", "name", name, "by", who(r))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveEnable(w http.ResponseWriter, r *http.Request)  { s.setEnabled(w, r, true) }
func (s *Server) serveDisable(w http.ResponseWriter, r *http.Request) { s.setEnabled(w, r, false) }

func (s *Server) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	var req apitype.EnableRequest
	if !s.change(w, r, http.MethodPost, &req, true) {
		return
	}
	c, err := s.backend.SetEnabled(r.Context(), r.PathValue("name"), enabled, req.Generation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("configuration enabled", "name", c.Name, "enabled", enabled, "by", who(r))
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) serveStatuses(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	sts, err := s.backend.Statuses(r.Context())
	s.answer(w, r, apitype.StatusList{Sessions: nonNil(sts)}, err)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	st, err := s.backend.Status(r.Context(), r.PathValue("name"))
	s.answer(w, r, st, err)
}

func (s *Server) serveLastError(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	st, err := s.backend.Status(r.Context(), r.PathValue("name"))
	s.answer(w, r, apitype.LastErrorResponse{LastError: st.LastError}, err)
}

func (s *Server) serveStart(w http.ResponseWriter, r *http.Request) {
	var req apitype.StartRequest
	if !s.change(w, r, http.MethodPost, &req, true) {
		return
	}
	name := r.PathValue("name")
	st, err := s.backend.Start(r.Context(), name, req.Options)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("session start", "name", name, "by", who(r))
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) serveStop(w http.ResponseWriter, r *http.Request) {
	var req apitype.StopRequest
	if !s.change(w, r, http.MethodPost, &req, true) {
		return
	}
	if req.Reason == "" {
		req.Reason = apitype.StopReasonUserInitiated
	}
	name := r.PathValue("name")
	st, err := s.backend.Stop(r.Context(), name, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("session stop", "name", name, "reason", req.Reason, "by", who(r))
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) serveMessage(w http.ResponseWriter, r *http.Request) {
	var req apitype.MessageRequest
	if !s.change(w, r, http.MethodPost, &req, false) {
		return
	}
	reply, err := s.backend.SendMessage(r.Context(), r.PathValue("name"), req.Data)
	s.answer(w, r, apitype.MessageResponse{Data: reply}, err)
}

func (s *Server) serveProviders(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	ps, err := s.backend.Providers(r.Context())
	s.answer(w, r, apitype.ProviderList{Providers: nonNil(ps)}, err)
}

// change begins a request that changes things: it checks the method and
// the caller's permission, and decodes the body into req (see decode). It
// reports whether to go on; when not, it has answered.
func (s *Server) change(w http.ResponseWriter, r *http.Request, m string, req any, optional bool) bool {
	return method(w, r, m) && s.permitWrite(w, r) && s.decode(w, r, req, optional)
}

// answer answers with v as JSON (200 OK), or with err, which the backend
// returned, when it is not nil (see fail).
func (s *Server) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// decode reads r's body as one JSON value into v, strictly: unknown fields
// and trailing data are errors. An empty body is accepted when optional.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	body := http.MaxBytesReader(w, r.Body, s.maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var extra json.RawMessage
		if err2 := dec.Decode(&extra); err2 != io.EOF {
			if err2 == nil {
				err = errors.New("request body: more than one JSON value")
			} else {
				err = err2
			}
		}
	} else if errors.Is(err, io.EOF) && optional {
		return true
	}
	if err == nil {
		return true
	}
	writeError(w, decodeError(err, s.maxBody))
	return false
}

// decodeError turns a JSON decoding error into an *apitype.Error naming
// the field or the offset.
func decodeError(err error, max int64) *apitype.Error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		apiErr    *apitype.Error
	)
	switch {
	case errors.As(err, &maxErr):
		return apitype.Errorf(apitype.CodeTooLarge, "request body is larger than %d bytes", max)
	case errors.Is(err, io.EOF):
		return apitype.Errorf(apitype.CodeInvalid, "request body: empty, want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apitype.Errorf(apitype.CodeInvalid, "request body: truncated JSON")
	case errors.As(err, &syntaxErr):
		return apitype.Errorf(apitype.CodeInvalid, "request body: invalid JSON at offset %d: %s",
			syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apitype.Errorf(apitype.CodeInvalid, "request body: want %s, got %s", typeName(typeErr), typeErr.Value)
		}
		return apitype.Errorf(apitype.CodeInvalid, "request body: %s: want %s, got %s", field, typeName(typeErr), typeErr.Value)
	case errors.As(err, &apiErr):
		return apiErr
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return apitype.Errorf(apitype.CodeInvalid, "request body: %s", msg)
}

func typeName(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind().String() {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number of type " + e.Type.String()
	}
	return e.Type.String()
}

// fail answers with err, which the backend returned.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *apitype.Error
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, context.DeadlineExceeded):
		apiErr = apitype.Errorf(apitype.CodeTimeout, "%v", err)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client is gone
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = apitype.Errorf(apitype.CodeInternal, "%v", err)
	}
	writeError(w, apiErr)
}

func writeError(w http.ResponseWriter, e *apitype.Error) {
	writeJSON(w, e.Code.HTTPStatus(), apitype.Error{Code: e.Code, Message: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// who describes the caller for the log.
func who(r *http.Request) string {
	c := callerFrom(r.Context())
	if !c.known {
		return "unknown"
	}
	return fmt.Sprintf("uid %d pid %d", c.id.UID, c.id.PID)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
