// Package captcha hands out image captchas and checks their answers
// (contract §12). Images come from github.com/mojocn/base64Captcha; answers
// live in Redis under the deployment's prefix, so that any gateway checks an
// answer another one handed out, and each answer is good once, for
// AnswerTTL.
package captcha

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mojocn/base64Captcha"
	"github.com/redis/rueidis"
)

// AnswerTTL is how long an answer is kept.
const AnswerTTL = 2 * time.Minute

// ErrBusy is returned by New when as many images are being drawn as the
// machine allows: drawing costs CPU that the buy path needs more.
var ErrBusy = errors.New("captcha: too many images being drawn")

// Captchas draws captchas and checks their answers.
type Captchas struct {
	c      rueidis.Client
	prefix string
	driver base64Captcha.Driver
	// slots bounds the images drawn at once.
	slots chan struct{}
}

// New returns Captchas storing answers in c under prefix, drawing at most
// concurrency images at once (at least 1).
func New(c rueidis.Client, prefix string, concurrency int) *Captchas {
	if concurrency < 1 {
		concurrency = 1
	}
	return &Captchas{
		c:      c,
		prefix: prefix,
		// Five digits on a 240x80 image: readable on a phone, typed on a
		// numeric keypad.
		driver: base64Captcha.NewDriverDigit(80, 240, 5, 0.7, 80),
		slots:  make(chan struct{}, concurrency),
	}
}

func (cs *Captchas) key(id string) string { return cs.prefix + ":captcha:" + id }

// New draws a captcha and stores its answer. image is a data: URL of a PNG.
func (cs *Captchas) New(ctx context.Context) (id, image string, err error) {
	select {
	case cs.slots <- struct{}{}:
	default:
		return "", "", ErrBusy
	}
	id, question, answer := cs.driver.GenerateIdQuestionAnswer()
	item, err := cs.driver.DrawCaptcha(question)
	<-cs.slots
	if err != nil {
		return "", "", fmt.Errorf("draw captcha: %w", err)
	}
	cmd := cs.c.B().Set().Key(cs.key(id)).Value(answer).Ex(AnswerTTL).Build()
	if err := cs.c.Do(ctx, cmd).Error(); err != nil {
		return "", "", fmt.Errorf("store captcha answer: %w", err)
	}
	return id, item.EncodeB64string(), nil
}

// maxID bounds the ids looked up: base64Captcha's are 20 characters.
const maxID = 64

// Check reports whether answer solves the captcha id. The answer is deleted
// whatever the outcome (GETDEL), so that each captcha gets one guess and a
// solved one cannot be used twice, by any gateway.
func (cs *Captchas) Check(ctx context.Context, id, answer string) (bool, error) {
	answer = strings.TrimSpace(answer)
	if id == "" || answer == "" || len(id) > maxID || strings.ContainsAny(id, ":{} ") {
		return false, nil
	}
	want, err := cs.c.Do(ctx, cs.c.B().Getdel().Key(cs.key(id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check captcha: %w", err)
	}
	return strings.EqualFold(want, answer), nil
}
