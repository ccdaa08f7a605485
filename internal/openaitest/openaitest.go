// Package openaitest is an OpenAI-compatible chat completions server for
// tests, written from the wire format, not from the assistant's client:
// POST /v1/chat/completions with bearer authentication, answered as one
// chat.completion or, with "stream": true, as chat.completion.chunk
// Server-Sent Events ending with `data: [DONE]` (and a usage chunk when
// stream_options.include_usage asks for it), errors as {"error": {...}}
// with their status. It records every request, so tests can prove what was
// and was not sent.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request as the server received it.
type Request struct {
	Authorization string
	Body          string // the raw JSON
	Model         string
	Stream        bool
	IncludeUsage  bool
	MaxTokens     int
	Messages      []Message
}

// Message is a chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Reply is what the server answers next: by default the text, in chunks
// of ChunkSize runes when streamed. Status, when not 0 or 200, answers an
// error with that status; Delay waits before answering (and between
// chunks, StreamDelay); Malformed sends a chunk that is not JSON; Cut ends
// the stream without [DONE] after the first chunk.
type Reply struct {
	Text                     string
	ChunkSize                int
	Status                   int
	ErrorType                string
	Delay, StreamDelay       time.Duration
	Malformed, Cut, NoUsage  bool
	PromptTokens, Completion int
}

// Server is a running fake model.
type Server struct {
	*httptest.Server
	Key string

	mu       sync.Mutex
	requests []Request
	reply    func(Request) Reply
}

// Start starts a server that wants key as its bearer token and answers
// with reply (which may look at the request: e.g. cite a position it saw).
func Start(tb testing.TB, key string, reply func(Request) Reply) *Server {
	s := &Server{Key: key, reply: reply}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.complete)
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

// BaseURL is what ACCOUNTDB_ASSISTANT_URL would be: .../v1.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// SetReply changes the answers from now on.
func (s *Server) SetReply(reply func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

// Requests are the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// AllBodies is every request body received, joined: what a test searches
// for anything that must never have been sent.
func (s *Server) AllBodies() string {
	var b strings.Builder
	for _, r := range s.Requests() {
		b.WriteString(r.Body)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "unreadable body")
		return
	}
	var body struct {
		Model         string    `json:"model"`
		Messages      []Message `json:"messages"`
		Stream        bool      `json:"stream"`
		MaxTokens     int       `json:"max_tokens"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	req := Request{Authorization: r.Header.Get("Authorization"), Body: string(raw)}
	if err := json.Unmarshal(raw, &body); err == nil {
		req.Model, req.Messages, req.Stream, req.MaxTokens = body.Model, body.Messages, body.Stream, body.MaxTokens
		req.IncludeUsage = body.StreamOptions != nil && body.StreamOptions.IncludeUsage
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	reply := s.reply
	s.mu.Unlock()

	if req.Authorization != "Bearer "+s.Key {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided.")
		return
	}
	if err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	}
	rep := reply(req)
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(w, rep.Status, orDefault(rep.ErrorType, "server_error"), "the fake model was told to fail")
		return
	}
	usage := map[string]int{"prompt_tokens": rep.PromptTokens, "completion_tokens": rep.Completion,
		"total_tokens": rep.PromptTokens + rep.Completion}
	id := fmt.Sprintf("chatcmpl-%d", time.Now().UnixNano())
	if !req.Stream && rep.Malformed {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id": "chatcmpl-x", "choices": [ {not json`)
		return
	}
	if !req.Stream {
		out := map[string]any{"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": rep.Text},
				"finish_reason": "stop"}}}
		if !rep.NoUsage {
			out["usage"] = usage
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	s.stream(w, r, req, rep, id, usage)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, req Request, rep Reply, id string, usage map[string]int) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl := w.(http.Flusher)
	chunk := func(v map[string]any) {
		v["id"], v["object"], v["created"], v["model"] = id, "chat.completion.chunk", time.Now().Unix(), req.Model
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		fl.Flush()
	}
	choice := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	chunk(choice(map[string]any{"role": "assistant", "content": ""}, nil))
	if rep.Malformed && rep.Text == "" {
		fmt.Fprint(w, "data: {not json\n\n")
		fl.Flush()
		return
	}
	size := max(rep.ChunkSize, 1)
	text := []rune(rep.Text)
	for i := 0; i < len(text); i += size {
		if i > 0 && rep.StreamDelay > 0 {
			select {
			case <-time.After(rep.StreamDelay):
			case <-r.Context().Done():
				return
			}
		}
		chunk(choice(map[string]any{"content": string(text[i:min(i+size, len(text))])}, nil))
		if rep.Malformed {
			fmt.Fprint(w, "data: {not json\n\n")
			fl.Flush()
			return
		}
		if rep.Cut {
			return
		}
	}
	chunk(choice(map[string]any{}, "stop"))
	if req.IncludeUsage && !rep.NoUsage {
		chunk(map[string]any{"choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
