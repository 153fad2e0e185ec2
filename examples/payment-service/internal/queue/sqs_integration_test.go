//go:build integration

package queue

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestSQSIntegration runs against a real SQS-compatible server: delayed
// send, long-poll receive, redelivery after the visibility timeout, delete.
func TestSQSIntegration(t *testing.T) {
	endpoint := os.Getenv("SQS_ENDPOINT")
	if endpoint == "" {
		t.Skip("SQS_ENDPOINT is not set: skipping the SQS queue tests (run scripts/integration-env.sh to start an SQS-compatible server)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("queue-it-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	q := NewSQS(client, aws.ToString(created.QueueUrl), time.Second)

	if err := q.Send(ctx, []byte(`{"n":1}`), time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Receive(ctx, 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("Receive() before the delay = %v, %v; want nothing", got, err)
	}
	first := receiveOne(ctx, t, q)
	if string(first.Body) != `{"n":1}` || first.ReceiveCount != 1 {
		t.Fatalf("first receive = %+v", first)
	}
	// Not deleted: it comes back after the 1s visibility timeout.
	again := receiveOne(ctx, t, q)
	if again.ID != first.ID || again.ReceiveCount != 2 {
		t.Fatalf("redelivery = %+v, want message %s with receive count 2", again, first.ID)
	}
	if err := q.Delete(ctx, again.ReceiptHandle); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if got, err := q.Receive(ctx, 10, time.Second); err != nil || len(got) != 0 {
		t.Fatalf("Receive() after Delete = %v, %v; want nothing", got, err)
	}
}

func receiveOne(ctx context.Context, t *testing.T, q *SQS) Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := q.Receive(ctx, 1, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			return got[0]
		}
	}
	t.Fatal("no message within 20s")
	return Message{}
}
