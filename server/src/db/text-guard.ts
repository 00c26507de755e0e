import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PrimitiveValueListNode,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type ValueNode,
} from 'kysely';
import { InputError } from '../errors.js';

/**
 * PostgreSQL's text cannot hold the NUL character: a display name or a sign-in name with one
 * would fail deep in the driver and answer 500, where SQLite stores it. Refusing it before any
 * query, on both databases, gives the caller a 400 they can act on and keeps the two alike.
 */
export class TextGuard implements KyselyPlugin {
  readonly #transformer = new RefuseNul();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

class RefuseNul extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    check(node.value);
    return super.transformValue(node);
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    node.values.forEach(check);
    return super.transformPrimitiveValueList(node);
  }
}

function check(value: unknown): void {
  if (typeof value === 'string' && value.includes('\u0000')) {
    throw new InputError('Text must not contain the NUL character (\\u0000)');
  }
}
