package payment

import (
	"context"
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		amount    int64
		currency  string
		wantField string
	}{
		{"ok", 1099, "usd", ""},
		{"max", MaxAmount, "eur", ""},
		{"zero", 0, "usd", "amount"},
		{"negative", -5, "usd", "amount"},
		{"too large", MaxAmount + 1, "usd", "amount"},
		{"upper currency", 100, "USD", "currency"},
		{"unknown currency", 100, "xyz", "currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.amount, tt.currency)
			var ve *ValidationError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantField != "" && !errors.As(err, &ve):
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			case tt.wantField != "" && ve.Field != tt.wantField:
				t.Fatalf("field = %q, want %q (%v)", ve.Field, tt.wantField, err)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	tests := []struct {
		from, to Status
		want     bool
	}{
		{StatusRequiresConfirmation, StatusProcessing, true},
		{StatusRequiresConfirmation, StatusSucceeded, false},
		{StatusProcessing, StatusSucceeded, true},
		{StatusProcessing, StatusFailed, true},
		{StatusProcessing, StatusRequiresConfirmation, true},
		{StatusSucceeded, StatusFailed, false},
		{StatusFailed, StatusProcessing, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			err := Transition(tt.from, tt.to)
			if got := err == nil; got != tt.want {
				t.Fatalf("Transition() error = %v, want allowed=%v", err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrInvalidTransition) {
				t.Fatalf("error %v does not wrap ErrInvalidTransition", err)
			}
		})
	}
	if !StatusSucceeded.Terminal() || !StatusFailed.Terminal() || StatusProcessing.Terminal() {
		t.Fatal("Terminal() wrong")
	}
}

func TestFakeProcessor(t *testing.T) {
	tests := []struct {
		card        string
		wantOK      bool
		wantCode    string
		wantErr     error
		wantLast4   string
		wantInvalid bool
	}{
		{card: CardSucceeds, wantOK: true, wantLast4: "4242"},
		{card: "4242 4242 4242 4242", wantOK: true, wantLast4: "4242"},
		{card: "5555-5555-5555-4444", wantOK: true, wantLast4: "4444"},
		{card: CardDeclined, wantCode: "card_declined", wantLast4: "0002"},
		{card: CardInsufficientFunds, wantCode: "insufficient_funds", wantLast4: "9995"},
		{card: CardProcessorDown, wantErr: ErrProcessorUnavailable, wantLast4: "0119"},
	}
	for _, tt := range tests {
		t.Run(tt.card, func(t *testing.T) {
			c := Card{Number: tt.card}
			if err := ValidateCard(c); err != nil {
				t.Fatalf("ValidateCard() = %v", err)
			}
			got, err := FakeProcessor{}.Process(context.Background(), Intent{}, c)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.Succeeded != tt.wantOK || got.FailureCode != tt.wantCode {
				t.Fatalf("Process() = %+v, want ok=%v code=%q", got, tt.wantOK, tt.wantCode)
			}
			if c.Last4() != tt.wantLast4 {
				t.Fatalf("Last4() = %q, want %q", c.Last4(), tt.wantLast4)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (FakeProcessor{}).Process(ctx, Intent{}, Card{Number: CardSucceeds}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Process() err = %v", err)
	}
}

func TestValidateCard(t *testing.T) {
	for _, n := range []string{"", "123", "4242424242424241", "42424242424242x2", "12345678901234567890"} {
		t.Run(n, func(t *testing.T) {
			var ve *ValidationError
			if err := ValidateCard(Card{Number: n}); !errors.As(err, &ve) {
				t.Fatalf("ValidateCard(%q) = %v, want ValidationError", n, err)
			}
		})
	}
	if got := (Card{Number: "12"}).Last4(); got != "12" {
		t.Fatalf("Last4 short = %q", got)
	}
}

func FuzzValidateCard(f *testing.F) {
	f.Add(CardSucceeds)
	f.Add("4242-4242 4242 4242")
	f.Add("")
	f.Fuzz(func(t *testing.T, n string) {
		_ = ValidateCard(Card{Number: n})
		_ = Card{Number: n}.Last4()
	})
}
