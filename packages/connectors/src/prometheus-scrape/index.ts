/**
 * The Prometheus scrape source.
 */
export {
  parseScrapeSourceDefinition,
  ScrapeSource,
  scrapeSourceDefinitionSchema,
  type ScrapeOutcome,
  type ScrapeSourceDefinition,
  type ScrapeSourceDefinitionInput,
  type ScrapeSourceStatus,
} from './scrape-source.js';
