/**
 * What the Sortie server promises: the API's shapes, its error body, the stream's close
 * codes with their sentences, and the ids and limits input is held to. Defined once in the
 * server's tree (pure types and constants) and read here, so the UI cannot drift from it.
 */
export * from '../../server/src/contract/index.js';
