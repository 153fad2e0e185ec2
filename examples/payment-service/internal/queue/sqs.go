package queue

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of the SQS client the queue uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// SQS is a Queue on an Amazon SQS (or SQS-compatible) queue.
type SQS struct {
	client     SQSAPI
	url        string
	visibility time.Duration
}

var _ Queue = (*SQS)(nil)

// MaxSQSDelay is the longest DelaySeconds SQS accepts.
const MaxSQSDelay = 15 * time.Minute

// NewSQS returns a Queue on queueURL. visibility is the visibility timeout
// requested on receive (the queue's default when <= 0).
func NewSQS(client SQSAPI, queueURL string, visibility time.Duration) *SQS {
	return &SQS{client: client, url: queueURL, visibility: visibility}
}

// Send implements Queue. Delays longer than MaxSQSDelay are capped.
func (q *SQS) Send(ctx context.Context, body []byte, delay time.Duration) error {
	delay = min(max(delay, 0), MaxSQSDelay)
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     aws.String(q.url),
		MessageBody:  aws.String(string(body)),
		DelaySeconds: int32(math.Ceil(delay.Seconds())),
	})
	if err != nil {
		return fmt.Errorf("send message to SQS: %w", err)
	}
	return nil
}

// Receive implements Queue with SQS long polling (wait is capped at 20s).
func (q *SQS) Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]Message, error) {
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(min(max(maxMessages, 1), 10)),
		WaitTimeSeconds:             int32(min(max(wait, 0), 20*time.Second) / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	}
	if q.visibility > 0 {
		in.VisibilityTimeout = int32(min(q.visibility, 12*time.Hour) / time.Second)
	}
	out, err := q.client.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("receive messages from SQS: %w", err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		count := 0
		if v, ok := m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; ok {
			_, _ = fmt.Sscan(v, &count) // an unparsable count stays 0
		}
		msgs = append(msgs, Message{
			ID:            aws.ToString(m.MessageId),
			Body:          []byte(aws.ToString(m.Body)),
			ReceiptHandle: aws.ToString(m.ReceiptHandle),
			ReceiveCount:  count,
		})
	}
	return msgs, nil
}

// Delete implements Queue.
func (q *SQS) Delete(ctx context.Context, receiptHandle string) error {
	_, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(q.url),
		ReceiptHandle: aws.String(receiptHandle),
	})
	if err != nil {
		return fmt.Errorf("delete message from SQS: %w", err)
	}
	return nil
}
