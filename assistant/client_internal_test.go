package assistant

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accountdb/accountdb/internal/openaitest"
)

func testClient(url, key string, answer time.Duration) (*client, func() (context.Context, context.CancelFunc)) {
	cfg := Config{URL: url, Model: "m", APIKey: key, AnswerTimeout: answer}.WithDefaults()
	return newClient(cfg), func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), answer) }
}

var msgs = []message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}

// TestClientSpeaksTheWireFormat: a JSON answer and a streamed one, with
// their usage, from an independent implementation of the protocol.
func TestClientSpeaksTheWireFormat(t *testing.T) {
	srv := openaitest.Start(t, "k", func(openaitest.Request) openaitest.Reply {
		return openaitest.Reply{Text: "héllo wörld [#3]", ChunkSize: 3, PromptTokens: 11, Completion: 5}
	})
	c, ctx := testClient(srv.BaseURL(), "k", 10*time.Second)
	cx, cancel := ctx()
	defer cancel()
	text, u, err := c.complete(cx, msgs, nil)
	if err != nil || text != "héllo wörld [#3]" || u.TotalTokens != 16 {
		t.Fatalf("complete: %q %+v %v", text, u, err)
	}
	var pieces []string
	text, u, err = c.complete(cx, msgs, func(s string) error { pieces = append(pieces, s); return nil })
	if err != nil || text != "héllo wörld [#3]" || strings.Join(pieces, "") != text || len(pieces) < 5 || u.PromptTokens != 11 {
		t.Fatalf("stream: %q %v %+v %v", text, pieces, u, err)
	}
	if r := srv.Requests()[1]; !r.Stream || !r.IncludeUsage || r.Authorization != "Bearer k" {
		t.Fatalf("streamed request %+v", r)
	}
}

// TestClientErrors: each way a model fails is one of the package's errors.
func TestClientErrors(t *testing.T) {
	srv := openaitest.Start(t, "k", func(openaitest.Request) openaitest.Reply { return openaitest.Reply{Text: "x"} })
	closed := openaitest.Start(t, "k", nil)
	closed.Close()
	stream := func(string) error { return nil }
	for _, tc := range []struct {
		name   string
		url    string
		key    string
		reply  openaitest.Reply
		stream bool
		want   error
	}{
		{"connection refused", closed.BaseURL(), "k", openaitest.Reply{}, false, ErrModelUnavailable},
		{"wrong key", srv.BaseURL(), "wrong", openaitest.Reply{Text: "x"}, false, ErrModelFailed},
		{"server error", srv.BaseURL(), "k", openaitest.Reply{Status: http.StatusInternalServerError}, true, ErrModelFailed},
		{"overloaded", srv.BaseURL(), "k", openaitest.Reply{Status: http.StatusServiceUnavailable}, false, ErrModelUnavailable},
		{"malformed JSON", srv.BaseURL(), "k", openaitest.Reply{Malformed: true}, false, ErrModelFailed},
		{"malformed chunk", srv.BaseURL(), "k", openaitest.Reply{Text: "abc", Malformed: true}, true, ErrModelFailed},
		{"no [DONE]", srv.BaseURL(), "k", openaitest.Reply{Text: "abc", Cut: true}, true, ErrModelFailed},
		{"slow", srv.BaseURL(), "k", openaitest.Reply{Text: "abc", Delay: time.Minute}, false, ErrModelTimeout},
		{"slow stream", srv.BaseURL(), "k", openaitest.Reply{Text: "abcdef", ChunkSize: 1, StreamDelay: time.Minute}, true, ErrModelTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetReply(func(openaitest.Request) openaitest.Reply { return tc.reply })
			c, ctx := testClient(tc.url, tc.key, time.Second)
			cx, cancel := ctx()
			defer cancel()
			var on func(string) error
			if tc.stream {
				on = stream
			}
			_, _, err := c.complete(cx, msgs, on)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "k@") || strings.Contains(err.Error(), tc.key+"\"") {
				t.Fatalf("the error names the key: %v", err)
			}
		})
	}
}
