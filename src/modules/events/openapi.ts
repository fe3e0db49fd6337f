// The event catalogue in the OpenAPI document: each type's data as a component schema, and each type
// as an OpenAPI 3.1 webhook (the signed POST a receiver gets).
import { eventJsonSchemas } from '../../core/events.ts';

export function eventOpenApi(): { webhooks: Record<string, unknown>; schemas: Record<string, unknown> } {
  const webhooks: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const signatureHeader = (name: string, description: string) => ({
    name,
    in: 'header',
    required: true,
    description,
    schema: { type: 'string' },
  });
  for (const [type, jsonSchema] of Object.entries(eventJsonSchemas())) {
    const { $schema: _, ...schema } = jsonSchema as Record<string, unknown>;
    const name = `EventData.${type}`;
    schemas[name] = schema;
    webhooks[type] = {
      post: {
        summary: type,
        description: `${schema.description ?? ''}\n\nSigned per Standard Webhooks; verify with the endpoint's secret.`,
        parameters: [
          signatureHeader(
            'webhook-id',
            'The event id: the same on every retry and replay (de-duplicate on it)',
          ),
          signatureHeader('webhook-timestamp', 'Unix seconds of this attempt'),
          signatureHeader('webhook-signature', 'Space-separated `v1,<base64 HMAC-SHA256>` signatures'),
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['id', 'type', 'organization_id', 'created_at', 'data'],
                properties: {
                  id: { type: 'string', format: 'uuid' },
                  type: { type: 'string', const: type },
                  organization_id: { type: 'string', format: 'uuid' },
                  created_at: { type: 'string', format: 'date-time' },
                  data: { $ref: `#/components/schemas/${name}` },
                },
              },
            },
          },
        },
        responses: {
          '2XX': {
            description: 'Received. 429 and 5xx are retried with backoff; other codes fail the delivery.',
          },
        },
      },
    };
  }
  return { webhooks, schemas };
}
