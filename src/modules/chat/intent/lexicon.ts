// Word classes of the request grammar. The grammar's rules name these classes ("a mail noun", "a verb of
// sending", "a sentiment word"); no rule decides an intent from one of them alone.

/** A word class from a space-separated list. */
export const words = (text: string): Set<string> => new Set(text.trim().split(/\s+/));

/** Nouns that name mail itself: they say "this is about mail" but are never a topic. */
export const MAIL_NOUNS = words(`
  email emails e-mail e-mails mail mails message messages msg msgs thread threads conversation conversations
  discussion discussions correspondence reply replies response responses note notes inbox mailbox stuff
  item items
`);

/** Singular mail nouns: "the last email" asks for one message. */
export const SINGULAR_MAIL_NOUNS = words(`
  email e-mail mail message msg thread conversation discussion reply response note one
`);

/** After a possessive these make the person a participant rather than the sender ("Bob's thread"). */
export const THREAD_NOUNS = words(`
  thread threads conversation conversations discussion discussions exchange exchanges chain chat chats correspondence
`);

/** The user: not a person to look up. */
export const SELF_WORDS = words(`i me my mine myself we us our ours ourselves i'm i've i'd i'll`);

/** Verbs whose subject wrote the mail: "Bob sent", "did Eve reply", "Alice wrote". */
export const SEND_VERBS = words(`
  send sends sent sending email emails emailed emailing mail mails mailed write writes wrote written
  reply replies replied respond responds responded forward forwards forwarded message messages messaged
  say says said ask asks asked tell tells told answer answers answered share shares shared cc cc'd ping pinged
  contact contacts contacted
`);

/** Verbs of sending whose object "me" makes the mail received ("sent me", "emails me"). */
export const SEND_TO_ME_VERBS = words(`
  send sends sent sending email emails emailed emailing mail mails mailed mailing write writes wrote writing
  forward forwards forwarded forwarding message messages messaged messaging contact contacts contacted
  contacting ping pinged cc cc'd
`);

/** "I got", "did I receive". */
export const RECEIVE_VERBS = words(`get gets got gotten getting receive receives received receiving`);

/** "I sent", "do I email": mail the user wrote. */
export const OWN_SEND_VERBS = words(
  `send sent email emailed mail mailed write wrote forward forwarded message messaged`,
);

/** Verbs that answer a message: "reply to Carol" is about Carol's message. */
export const REPLY_VERBS = words(`
  reply replies replied replying respond responds responded responding answer answers answered answering
  response
`);

/** Auxiliaries and copulas: "is Bob angry", "does Grace sound upset", "Henrik was rude". */
export const AUXILIARIES = words(`
  is was are were does did do has have had will would can could should seem seems seemed sound sounds sounded
  feel feels felt look looks looked been being get gets got become became
`);

/** Words that tell nothing about what the mail is about. */
export const FUNCTION_WORDS = words(`
  a an the this that these those some any all every each no none other another such
  i me my mine myself we us our ours you your yours he him his she her hers it its they them their theirs
  who whom whose what which where when why how whatever whoever
  is am are was were be been being do does did done doing have has had having will would can could shall
  should may might must
  and or but nor so if then than because as while also too either neither not only just even still yet
  of in on at by for from to with without about into onto over under between among through during
  before after since until till up down out off upon within via per like unlike near towards toward
  there here now then again ever never always often usually sometimes really very quite rather pretty
  much many more most less least few lot lots bit kind sort
  please pls kindly thanks thank okay ok yes yeah yep no nope hey hi hello
  anything everything something nothing anyone everyone someone nobody anybody everybody somebody people
  one ones thing things stuff way
  i'm i've i'd i'll you're you've you'll we're we've it's that's there's what's who's where's let's
  can't don't doesn't didn't won't isn't aren't wasn't weren't haven't hasn't hadn't shouldn't couldn't
  wouldn't
  show shows showed shown find finds found list lists search searching look looking looked looks get gets got
  gotten give gives gave given fetch display pull open see seen tell told let know need want wanted like
  help check checked make makes made take takes took go goes went come came bring brought keep kept put
  send sends sent sending received receive receives receiving wrote write writes written
  happen happens happened happening change changes changed changing think thinks thought say says said
  seem seems seemed sound sounds sounded feel feels felt
  usually generally typically normally overall quick quickly brief briefly short fast slow slowly
  lately recently recent currently already
  latest newest oldest first last next previous
  total number numbers amount count counts
  whether anyway actually basically probably maybe perhaps
  received sent incoming outgoing inbound outbound
  subject titled entitled called named labelled labeled tagged
  again else own back away discuss discussed discussing talk talked talking getting becoming become became
  u ur plz thru read reading right sitting lying waiting general overall
`);

/** Words that make a request a question about feelings. */
export const SENTIMENT_WORDS = words(`
  tone tones mood moods sentiment sentiments feel feels feeling feelings felt emotion emotions emotional
  vibe vibes attitude angry angrier anger upset annoyed annoying irritated irritable frustrated frustration
  mad furious pissed happy happier unhappy sad pleased satisfied dissatisfied disappointed positive
  negative neutral hostile rude aggressive passive-aggressive friendly unfriendly polite impolite tense
  stressed worried anxious calm cheerful grumpy excited enthusiastic sarcastic cold warm nice mean
  tone-check
`);

/** Words that ask for a summary. */
export const SUMMARY_WORDS = words(`
  summarise summarize summarised summarized summarising summarizing summary summaries tldr gist recap recaps
  digest overview highlights rundown synopsis condense recapitulate briefing
`);

/** Verbs that start a search. */
export const SEARCH_VERBS = words(`
  show find list search look fetch display pull open get give locate retrieve bring surface dig
`);

/** Greetings, thanks, farewells and chit-chat: a request made only of these is small talk. */
export const SMALLTALK_WORDS = words(`
  hi hello hey hiya howdy yo greetings there good morning afternoon evening night day thanks thank you thx
  ty cheers much so very a lot appreciated bye goodbye see later ok okay cool great nice awesome perfect
  fine sure alright all right got it you're your are how who what can do doing you're amazing brilliant
  lovely wonderful helpful the best welcome np sounds well feeling going it's is up sup what's again
  really indeed that was this super mate buddy pal dude friend lol haha heh
`);

/** At least one of these must be there for small talk ("what can you do" has none of the others). */
export const SMALLTALK_ANCHORS = words(`
  hi hello hey hiya howdy yo greetings morning afternoon evening thanks thank thx ty cheers appreciated bye
  goodbye later ok okay cool great nice awesome perfect alright amazing brilliant lovely wonderful helpful
  welcome np sup lol haha heh
`);

export const NUMBER_WORDS = words(
  `one two three four five six seven eight nine ten eleven twelve twenty fifty hundred`,
);
