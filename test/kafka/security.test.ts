import { loadConfig } from '../../src/config/config';
import { describeAuth, kafkaSaslOptions } from '../../src/kafka/security';

/**
 * MSK IAM cannot be reached from here; what can be checked is that the
 * token is AWS's own signer's (aws-msk-iam-sasl-signer-js) presigned
 * kafka-cluster:Connect request for the configured region, made from the
 * default credential chain, and that it is reused until it nears expiry.
 */
describe('MSK IAM token provider', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test("is AWS's signed kafka-cluster:Connect URL for the region, from the environment's credentials, cached", async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    const config = loadConfig({ KAFKA_BROKERS: 'b-1.example.kafka.eu-west-1.amazonaws.com:9098', KAFKA_SASL_MECHANISM: 'AWS-MSK-IAM', AWS_REGION: 'eu-west-1' });
    expect(config.kafka.ssl).toBe(true);
    expect(describeAuth(config.kafka)).toBe('SASL AWS MSK IAM over TLS');
    const sasl = kafkaSaslOptions(config.kafka) as { mechanism: string; oauthBearerProvider: () => Promise<{ value: string }> };
    expect(sasl.mechanism).toBe('oauthbearer');
    const { value } = await sasl.oauthBearerProvider();
    const url = new URL(Buffer.from(value, 'base64url').toString('utf8'));
    expect(url.host).toBe('kafka.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('kafka-cluster:Connect');
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AKIAIOSFODNN7EXAMPLE\/\d{8}\/eu-west-1\/kafka-cluster\/aws4_request$/);
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect((await sasl.oauthBearerProvider()).value).toBe(value);
  });
});
