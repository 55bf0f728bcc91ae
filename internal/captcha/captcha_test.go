package captcha_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/captcha"
	"github.com/flashgate/flashgate/internal/testenv"
)

func setup(t *testing.T) (*captcha.Captchas, rueidis.Client, string) {
	t.Helper()
	prefix := testenv.Prefix(t)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{testenv.RedisAddr()}, DisableCache: true})
	if err != nil {
		t.Fatalf("redis is required: %v", err)
	}
	t.Cleanup(c.Close)
	return captcha.New(c, prefix, 2), c, prefix
}

// answer reads the stored answer, as only a test may.
func answer(t *testing.T, c rueidis.Client, prefix, id string) string {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Get().Key(prefix+":captcha:"+id).Build()).ToString()
	if err != nil {
		t.Fatalf("answer of %s: %v", id, err)
	}
	return v
}

func TestCaptchaImageAndAnswer(t *testing.T) {
	cs, c, prefix := setup(t)
	ctx := context.Background()
	id, img, err := cs.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const head = "data:image/png;base64,"
	if !strings.HasPrefix(img, head) {
		t.Fatalf("image %.40q is not a PNG data URL", img)
	}
	png, err := base64.StdEncoding.DecodeString(img[len(head):])
	if err != nil || len(png) < 500 || string(png[1:4]) != "PNG" {
		t.Fatalf("image does not decode to a PNG (%d bytes, %v)", len(png), err)
	}
	want := answer(t, c, prefix, id)
	if len(want) != 5 || strings.Trim(want, "0123456789") != "" {
		t.Fatalf("answer %q, want 5 digits", want)
	}
	ttl, err := c.Do(ctx, c.B().Pttl().Key(prefix+":captcha:"+id).Build()).AsInt64()
	if err != nil || ttl <= 0 || time.Duration(ttl)*time.Millisecond > captcha.AnswerTTL {
		t.Fatalf("answer TTL %dms (%v), want at most %v", ttl, err, captcha.AnswerTTL)
	}
	// The right answer, once; then it is gone.
	if ok, err := cs.Check(ctx, id, " "+want+" "); err != nil || !ok {
		t.Fatalf("right answer: %v %v", ok, err)
	}
	if ok, err := cs.Check(ctx, id, want); err != nil || ok {
		t.Fatalf("second use of an answer: %v %v", ok, err)
	}
}

func TestCaptchaWrongAnswerSpendsIt(t *testing.T) {
	cs, c, prefix := setup(t)
	ctx := context.Background()
	id, _, err := cs.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := answer(t, c, prefix, id)
	wrong := "00000"
	if want == wrong {
		wrong = "11111"
	}
	if ok, err := cs.Check(ctx, id, wrong); err != nil || ok {
		t.Fatalf("wrong answer: %v %v", ok, err)
	}
	// One guess per image: the right answer after a wrong one fails.
	if ok, _ := cs.Check(ctx, id, want); ok {
		t.Fatal("a captcha took a second guess")
	}
	for _, c := range []struct{ id, answer string }{
		{"", "12345"}, {id, ""}, {"unknown-id", "12345"}, {"a:b", "1"}, {strings.Repeat("x", 100), "1"},
	} {
		if ok, err := cs.Check(ctx, c.id, c.answer); err != nil || ok {
			t.Errorf("Check(%q, %q) = %v, %v", c.id, c.answer, ok, err)
		}
	}
}

func TestCaptchaSharedAcrossInstances(t *testing.T) {
	a, c, prefix := setup(t)
	b := captcha.New(c, prefix, 1) // another gateway on the same Redis and prefix
	ctx := context.Background()
	id, _, err := a.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Check(ctx, id, answer(t, c, prefix, id)); err != nil || !ok {
		t.Fatalf("another instance could not check the answer: %v %v", ok, err)
	}
}

func TestCaptchaBusy(t *testing.T) {
	cs, _, _ := setup(t)
	cs.TakeSlot()
	cs.TakeSlot()
	if _, _, err := cs.New(context.Background()); err != captcha.ErrBusy {
		t.Fatalf("all slots taken: %v, want ErrBusy", err)
	}
	cs.FreeSlot()
	if _, _, err := cs.New(context.Background()); err != nil {
		t.Fatalf("a slot free: %v", err)
	}
}
