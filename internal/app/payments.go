package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/payment"
)

// DevAlipayAppID is the app id dev's Alipay sandbox serves.
const DevAlipayAppID = "9021000000000001"

// newPayments builds the payment service and its Alipay client: the
// configured account, dev's sandbox (whose listener is bound already), or
// none (the alipay channel answers 503).
func (a *App) newPayments(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) error {
	pay, err := a.alipayClient(cfg, log)
	if err != nil {
		return err
	}
	publicURL := cfg.PublicURL
	if a.HTTPAddr != "" && (publicURL == "" || publicURL == "http://"+cfg.HTTPAddr) {
		// The default follows the bound address (a :0 port in tests).
		publicURL = "http://" + a.HTTPAddr
	}
	a.Payment = payment.New(payment.Config{OrderTTL: cfg.OrderTTL, PublicURL: publicURL, Alipay: pay, Metrics: reg,
		WSPerUser: cfg.WSPerUser, WSMax: cfg.WSMax}, a.DB, a.Store, log)
	return nil
}

func (a *App) alipayClient(cfg *config.Config, log *slog.Logger) (*alipay.Client, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	if a.PaysimAddr != "" {
		key, err := paysim.GenerateMerchantKey()
		if err != nil {
			return nil, err
		}
		sim, err := paysim.New(paysim.Config{AppID: DevAlipayAppID, MerchantPublicKey: &key.PublicKey, Logger: log})
		if err != nil {
			return nil, err
		}
		a.Paysim = sim
		return alipay.New(alipay.Config{
			Gateway: "http://" + a.PaysimAddr + paysim.GatewayPath, AppID: DevAlipayAppID,
			PrivateKey: key, AlipayPublicKey: sim.AlipayPublicKey(),
		}, hc), nil
	}
	if cfg.AlipayGateway == "" {
		return nil, nil
	}
	key, err := alipay.LoadPrivateKey(cfg.AlipayPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("FLASHGATE_ALIPAY_PRIVATE_KEY: %w", err)
	}
	pub, err := alipay.LoadPublicKey(cfg.AlipayPublicKey)
	if err != nil {
		return nil, fmt.Errorf("FLASHGATE_ALIPAY_PUBLIC_KEY: %w", err)
	}
	return alipay.New(alipay.Config{Gateway: cfg.AlipayGateway, AppID: cfg.AlipayAppID, PrivateKey: key, AlipayPublicKey: pub}, hc), nil
}
