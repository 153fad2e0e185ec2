package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS records the inputs it gets; each Fn hook decides the answer.
type fakeSQS struct {
	SendFn    func(*sqs.SendMessageInput) (*sqs.SendMessageOutput, error)
	ReceiveFn func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	DeleteFn  func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error)
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return f.SendFn(in)
}

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return f.ReceiveFn(in)
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return f.DeleteFn(in)
}

func TestSQSSendCapsDelay(t *testing.T) {
	tests := []struct {
		delay time.Duration
		want  int32
	}{
		{0, 0},
		{-time.Second, 0},
		{1500 * time.Millisecond, 2},
		{time.Hour, 900},
	}
	for _, tt := range tests {
		t.Run(tt.delay.String(), func(t *testing.T) {
			var got *sqs.SendMessageInput
			f := &fakeSQS{SendFn: func(in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
				got = in
				return &sqs.SendMessageOutput{}, nil
			}}
			if err := NewSQS(f, "http://q/1/jobs", 0).Send(context.Background(), []byte(`{"a":1}`), tt.delay); err != nil {
				t.Fatal(err)
			}
			if got.DelaySeconds != tt.want || aws.ToString(got.MessageBody) != `{"a":1}` || aws.ToString(got.QueueUrl) != "http://q/1/jobs" {
				t.Fatalf("SendMessageInput = delay %d body %q url %q, want delay %d", got.DelaySeconds, aws.ToString(got.MessageBody), aws.ToString(got.QueueUrl), tt.want)
			}
		})
	}
}

func TestSQSReceive(t *testing.T) {
	var got *sqs.ReceiveMessageInput
	f := &fakeSQS{ReceiveFn: func(in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
		got = in
		return &sqs.ReceiveMessageOutput{Messages: []types.Message{
			{MessageId: aws.String("m1"), Body: aws.String("hello"), ReceiptHandle: aws.String("r1"),
				Attributes: map[string]string{"ApproximateReceiveCount": "3"}},
			{MessageId: aws.String("m2"), Body: aws.String("x"), ReceiptHandle: aws.String("r2")},
		}}, nil
	}}
	msgs, err := NewSQS(f, "u", 45*time.Second).Receive(context.Background(), 50, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxNumberOfMessages != 10 || got.WaitTimeSeconds != 20 || got.VisibilityTimeout != 45 {
		t.Fatalf("ReceiveMessageInput = max %d wait %d vis %d, want 10 20 45", got.MaxNumberOfMessages, got.WaitTimeSeconds, got.VisibilityTimeout)
	}
	want := []Message{{ID: "m1", Body: []byte("hello"), ReceiptHandle: "r1", ReceiveCount: 3}, {ID: "m2", Body: []byte("x"), ReceiptHandle: "r2"}}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		if msgs[i].ID != want[i].ID || string(msgs[i].Body) != string(want[i].Body) || msgs[i].ReceiptHandle != want[i].ReceiptHandle || msgs[i].ReceiveCount != want[i].ReceiveCount {
			t.Errorf("message %d = %+v, want %+v", i, msgs[i], want[i])
		}
	}
}

func TestSQSErrorsAreWrapped(t *testing.T) {
	boom := errors.New("boom")
	f := &fakeSQS{
		SendFn:    func(*sqs.SendMessageInput) (*sqs.SendMessageOutput, error) { return nil, boom },
		ReceiveFn: func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) { return nil, boom },
		DeleteFn:  func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) { return nil, boom },
	}
	q := NewSQS(f, "u", 0)
	ctx := context.Background()
	if err := q.Send(ctx, nil, 0); !errors.Is(err, boom) {
		t.Errorf("Send() = %v", err)
	}
	if _, err := q.Receive(ctx, 1, 0); !errors.Is(err, boom) {
		t.Errorf("Receive() = %v", err)
	}
	if err := q.Delete(ctx, "r"); !errors.Is(err, boom) {
		t.Errorf("Delete() = %v", err)
	}
	var deleted string
	f.DeleteFn = func(in *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
		deleted = aws.ToString(in.ReceiptHandle)
		return &sqs.DeleteMessageOutput{}, nil
	}
	if err := q.Delete(ctx, "r9"); err != nil || deleted != "r9" {
		t.Errorf("Delete() = %v, deleted %q", err, deleted)
	}
}
