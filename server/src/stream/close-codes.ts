/**
 * The stream's close codes are part of what Sortie promises its clients, so they are defined
 * in the contract (server/src/contract/close-codes.ts, beside the sentence the web viewer
 * shows for each). The relay's modules import them from here.
 */
export { CloseCode, type CloseCodeValue } from '../contract/close-codes.js';
