package gateway

import (
	"net/http"
	"testing"
)

// FuzzParseChat: any body gets a request or an error that names a status
// and says something; an accepted request always has a served model and a
// non-empty new turn.
func FuzzParseChat(f *testing.F) {
	for _, seed := range []string{
		`{"model":"miniclaw","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"miniclaw","stream":true,"stream_options":{"include_usage":true},"user":"u","messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}]}`,
		`{"model":"gpt","messages":[]}`,
		`{"model":"miniclaw","n":2,"messages":[{"role":"assistant","content":null}]}`,
		`[]`, `{"model":"miniclaw","model":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	s := &Server{}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := s.parseChat(body)
		if e != nil {
			if e.status < 400 || e.status >= 500 || e.msg == "" || http.StatusText(e.status) == "" {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if req.model != openAIModel || req.content == "" {
			t.Fatalf("accepted %+v", req)
		}
	})
}
