// Mail chat (docs/chat.md): a person asks about their own mail in their own words — search, summaries,
// tone, counts and rankings, reply drafts — over HTTP or a WebSocket, answered from the mail with the
// messages as citations; an OpenAI-compatible model writes the answers when one is configured.
import type { MailroomModule } from '../../core/module.ts';
import { OpenAiCompatibleLlm } from '../../providers/llm/openai-compatible.ts';
import { chatRoutes } from './routes.ts';
import { ChatService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    chat: ChatService;
  }
}

export const chatModule: MailroomModule = {
  name: 'chat',
  create: ({ db, clock, config, log }) => {
    const llm = config.llm
      ? new OpenAiCompatibleLlm({
          baseUrl: config.llm.url,
          apiKey: config.llm.apiKey,
          model: config.llm.model,
          timeoutMs: config.llm.timeoutMs,
          temperature: config.llm.temperature,
        })
      : null;
    return {
      chat: new ChatService({
        db,
        clock,
        llm,
        dailyTokens: config.llm?.dailyTokens ?? 0,
        log: log.child({ component: 'chat' }),
      }),
    };
  },
  routes: async (app, { services, limiter, config }) => {
    await app.register(chatRoutes(services.chat, limiter, { perMinute: config.chat.perMinute }));
  },
};
