// Trains the shipped spam model (src/modules/intelligence/spam/model.json) on the training half of the
// SpamAssassin public corpus: node scripts/train-spam-model.ts
//
// Deterministic: the split is by checksum, messages are taken in checksum order, cross-validation folds
// are by a hash of the message body, and the model serialises with sorted keys, so two runs write the
// same bytes. Held-out messages (corpus-split.ts) are never read here. The cross-validated precision and
// recall it prints, all inside the training half, are what DEFAULT_SPAM_THRESHOLD was chosen from.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { analysisInputFromRaw } from '../src/modules/intelligence/input.ts';
import {
  crossValidatedScores,
  DEFAULT_SPAM_THRESHOLD,
  fitCalibration,
  serialiseModel,
  type TrainingExample,
  train,
} from '../src/modules/intelligence/spam/classifier.ts';
import {
  loadSpamAssassinCorpus,
  messageBody,
  splitCorpus,
} from '../src/modules/intelligence/spam/corpus-split.ts';
import { extractSpamFeatures } from '../src/modules/intelligence/spam/features.ts';

const MIN_DOCUMENTS = 2;
const modelPath = new URL('../src/modules/intelligence/spam/model.json', import.meta.url);

const { train: training, heldOut } = splitCorpus(await loadSpamAssassinCorpus());
training.sort((a, b) => (a.checksum < b.checksum ? -1 : a.checksum > b.checksum ? 1 : 0));
console.log(`training on ${training.length} messages (${heldOut.length} held out, not read)`);

const examples: TrainingExample[] = [];
for (const message of training) {
  const input = await analysisInputFromRaw(message.text);
  examples.push({
    features: extractSpamFeatures(input),
    spam: message.spam,
    key: createHash('sha256').update(messageBody(message.text)).digest('hex'),
  });
}

// What the threshold is chosen from: precision and recall of out-of-fold scores, training half only.
const scored = crossValidatedScores(examples, { minDocuments: MIN_DOCUMENTS });
const calibration = fitCalibration(scored);
console.log('cross-validated on the training half:');
console.log('| threshold | precision | recall | F1 |');
for (const threshold of [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]) {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const { score, spam } of scored) {
    const predicted = 1 / (1 + Math.exp(-(calibration.slope * score + calibration.intercept))) >= threshold;
    if (predicted && spam) tp++;
    else if (predicted) fp++;
    else if (spam) fn++;
  }
  const precision = tp / (tp + fp);
  const recall = tp / (tp + fn);
  const f1 = (2 * precision * recall) / (precision + recall);
  const mark = threshold === DEFAULT_SPAM_THRESHOLD ? ' (default)' : '';
  console.log(`| ${threshold}${mark} | ${precision.toFixed(4)} | ${recall.toFixed(4)} | ${f1.toFixed(4)} |`);
}

const model = train(examples, { minDocuments: MIN_DOCUMENTS });
const json = serialiseModel(model);
writeFileSync(modelPath, json);
console.log(
  `wrote ${modelPath.pathname}: ${Object.keys(model.features).length} features, ${(json.length / 1e6).toFixed(2)} MB, ` +
    `calibration slope ${model.calibration.slope.toFixed(5)} intercept ${model.calibration.intercept.toFixed(5)}`,
);
