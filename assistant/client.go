package assistant

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// The OpenAI-compatible chat completions wire format, as NIM, vLLM and
// Ollama serve it: POST {base}/chat/completions; a JSON chat.completion, or
// with "stream": true Server-Sent Events of chat.completion.chunk, each a
// `data: {...}` line, ending with `data: [DONE]`; errors {"error": {...}}.

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model         string         `json:"model"`
	Messages      []message      `json:"messages"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Temperature   float64        `json:"temperature"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Usage is the model's count of tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatResponse struct {
	Choices []struct {
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

// client talks to one model endpoint.
type client struct {
	cfg  Config
	http *http.Client
}

func newClient(cfg Config) *client {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext,
		TLSHandshakeTimeout: cfg.ConnectTimeout, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}
	return &client{cfg: cfg, http: &http.Client{Transport: t}}
}

// complete sends messages and returns the answer. With onDelta set the
// answer is streamed and onDelta gets each piece of text as it comes (an
// error from it ends the answer with that error). The context bounds the
// whole answer.
func (c *client) complete(ctx context.Context, msgs []message, onDelta func(string) error) (string, Usage, error) {
	req := chatRequest{Model: c.cfg.Model, Messages: msgs, Stream: onDelta != nil, MaxTokens: c.cfg.MaxAnswerTokens, Temperature: 0.2}
	if req.Stream {
		req.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", Usage{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.cfg.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", Usage{}, fmt.Errorf("%w: the configured URL is not usable", ErrModelUnavailable)
	}
	hr.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	if c.cfg.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return "", Usage{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", Usage{}, statusError(resp)
	}
	if req.Stream {
		return readStream(ctx, resp.Body, onDelta)
	}
	var cr chatResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&cr); err != nil {
		return "", Usage{}, bodyError(ctx, err, "the model's answer is not JSON")
	}
	if len(cr.Choices) == 0 || cr.Choices[0].Message == nil {
		return "", Usage{}, fmt.Errorf("%w: the model's answer has no message", ErrModelFailed)
	}
	var u Usage
	if cr.Usage != nil {
		u = *cr.Usage
	}
	return cr.Choices[0].Message.Content, u, nil
}

// readStream reads chat.completion.chunk events until data: [DONE].
func readStream(ctx context.Context, body io.Reader, onDelta func(string) error) (string, Usage, error) {
	var text strings.Builder
	var u Usage
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue // blank separators, comments (": keep-alive"), event:/id: fields
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			return text.String(), u, nil
		}
		var cr chatResponse
		if err := json.Unmarshal([]byte(data), &cr); err != nil {
			return text.String(), u, fmt.Errorf("%w: a streamed chunk is not JSON", ErrModelFailed)
		}
		if cr.Usage != nil {
			u = *cr.Usage
		}
		for _, ch := range cr.Choices {
			if ch.Delta == nil || ch.Delta.Content == "" {
				continue
			}
			text.WriteString(ch.Delta.Content)
			if err := onDelta(ch.Delta.Content); err != nil {
				return text.String(), u, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return text.String(), u, bodyError(ctx, err, "the model's stream broke off")
	}
	return text.String(), u, fmt.Errorf("%w: the model's stream ended without [DONE]", ErrModelFailed)
}

// transportError classifies a failed request: our deadline (or the dial
// timeout) is a timeout, anything else on the way an unreachable model.
func transportError(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrModelTimeout, scrub(err))
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrModelUnavailable, scrub(err))
}

func bodyError(ctx context.Context, err error, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s", ErrModelTimeout, what)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %s", ErrModelFailed, what)
}

// statusError is a model's non-200 answer. The body's message is not passed
// on (it is the model's, not ours to show), only its type and code.
func statusError(resp *http.Response) error {
	var e struct {
		Error struct {
			Type string `json:"type"`
			Code any    `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	what := fmt.Sprintf("the model answered %d", resp.StatusCode)
	if e.Error.Type != "" {
		what += " (" + e.Error.Type + ")"
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s", ErrModelUnavailable, what)
	case http.StatusGatewayTimeout:
		return fmt.Errorf("%w: %s", ErrModelTimeout, what)
	}
	return fmt.Errorf("%w: %s", ErrModelFailed, what)
}

// scrub keeps a transport error's kind without the request it carried
// (url.Error names the URL, which may hold credentials).
func scrub(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
