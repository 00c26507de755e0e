import { useId, useLayoutEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../api/http';
import { APP_WARM_POOL_LIMIT, DEFAULT_RESOURCE_LIMITS, type App } from '../contract';
import { AppIcon } from '../ui/AppIcon';
import { DialogFooter } from '../ui/DialogFooter';
import { Field } from '../ui/Field';
import { Modal } from '../ui/Modal';
import { createApp, updateApp } from './adminApi';
import { fieldFromServerMessage, fromDraft, LIMIT_FIELDS, toDraft, type AppDraft, type DraftErrors, type DraftField, type TextField } from './appDraft';

interface Props {
  /** null: a new app. */
  app: App | null;
  categories: readonly string[];
  onSaved: (app: App) => void;
  onCancel: () => void;
}

const limitLabels: Record<(typeof LIMIT_FIELDS)[number], string> = {
  cpu_request: 'CPU request',
  cpu_limit: 'CPU limit',
  memory_request: 'Memory request',
  memory_limit: 'Memory limit',
};

const fileTransferHelp: Record<App['file_transfer'], string> = {
  both: 'People can upload files into a session and download what the app saved.',
  upload: 'People can put files into a session, but not take any out.',
  download: 'People can browse and download what the app saved, but not upload.',
  none: 'No files move in or out through Sortie.',
};

const clipboardHelp: Record<App['clipboard'], string> = {
  both: 'People can copy text out of the app and paste text into it.',
  to_session: 'People can paste text into the app, but not copy any out.',
  from_session: 'People can copy text out of the app, but not paste any in.',
  none: 'No text moves between the app and the person’s clipboard.',
};

const recordingHelp: Record<NonNullable<App['recording']>, string> = {
  off: 'Sessions are not recorded.',
  always: 'Sortie records every session; viewers are told. Admins play recordings back under Recordings.',
  optional: 'The person launching chooses whether the session is recorded; viewers are told.',
};

const visibilityHelp: Record<App['visibility'], string> = {
  public: 'Everyone who signs in can launch it.',
  approved: 'Only people an administrator approved, for this app or its category.',
  admin_only: 'Only administrators see it.',
};

export function AppForm({ app, categories, onSaved, onCancel }: Props) {
  const isNew = app === null;
  const [draft, setDraft] = useState<AppDraft>(() => toDraft(app));
  const [errors, setErrors] = useState<DraftErrors>({});
  const [serverError, setServerError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const uid = useId();

  const set = <K extends DraftField>(field: K, value: AppDraft[K]) => {
    setDraft((d) => ({ ...d, [field]: value }));
    if (errors[field]) setErrors(({ [field]: _dropped, ...rest }) => rest);
  };

  // One problem is said once, next to Save; several get a word each by their fields.
  const inlineError = (field: DraftField) => (Object.keys(errors).length > 1 ? errors[field] : undefined);

  // The field to focus once the render that marks it is committed: a layout effect runs right
  // after that commit, whereas a frame callback may come much later on a busy machine and pull
  // the cursor away from whatever the person has moved on to type in.
  const [focusRequest, setFocusRequest] = useState<{ field: DraftField } | null>(null);
  useLayoutEffect(() => {
    if (focusRequest) formRef.current?.querySelector<HTMLElement>(`[data-testid="app-form-${focusRequest.field}"]`)?.focus();
  }, [focusRequest]);
  const focusField = (field: DraftField) => setFocusRequest({ field });

  /** Props shared by every input: id, test id, value, change handler and error wiring. */
  const bind = (field: TextField) => ({
    id: `${uid}-${field}`,
    name: field,
    'data-testid': `app-form-${field}`,
    value: draft[field],
    'aria-invalid': errors[field] ? true : undefined,
    'aria-describedby': `${uid}-${field}-hint ${uid}-${field}-error`,
    onChange: (e: { target: { value: string } }) => set(field, e.target.value as never),
  });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (saving) return;
    const checked = fromDraft(draft, isNew);
    if (!checked.ok) {
      setErrors(checked.errors);
      setServerError(null);
      focusField(Object.keys(checked.errors)[0] as DraftField);
      return;
    }
    setSaving(true);
    setServerError(null);
    setErrors({});
    try {
      const saved = isNew ? await createApp(checked.app) : await updateApp(app.id, checked.app);
      onSaved(saved ?? ({ ...checked.app, category: checked.app.category ?? '', resource_limits: { ...DEFAULT_RESOURCE_LIMITS, ...checked.app.resource_limits } } as App));
    } catch (err) {
      setSaving(false);
      let message = errorMessage(err);
      let field = fieldFromServerMessage(message);
      if (err instanceof ApiError && err.status === 409) {
        field = 'id';
        if (!err.fromServer) message = `An app with the id “${checked.app.id}” already exists.`;
      }
      setServerError(message);
      if (field) {
        setErrors({ [field]: message });
        focusField(field);
      }
    }
  };

  const isContainer = draft.launch_type === 'container';
  const problems = Object.values(errors);
  const formError = serverError ?? (problems.length > 1 ? `Fix the ${problems.length} highlighted fields.` : (problems[0] ?? null));

  return (
    <Modal title={isNew ? 'New app' : `Edit ${app.name}`} onClose={onCancel} busy={saving} size="lg" testId="app-form">
      <form ref={formRef} className="modal__form" onSubmit={submit} noValidate>
        <div className="modal__body">
          <fieldset className="form-section">
            <legend className="form-section__title">Basics</legend>
            <div className="form-grid">
              <Field id={`${uid}-id`} label="Id" hint={isNew ? 'Lowercase letters, digits, “.”, “_” and “-”. Cannot change later.' : 'The id cannot change.'} error={inlineError('id')}>
                <input className="input input--mono" {...bind('id')} disabled={!isNew} autoCapitalize="none" spellCheck={false} autoComplete="off" placeholder="e.g. gimp" />
              </Field>
              <Field id={`${uid}-name`} label="Name" error={inlineError('name')}>
                <input className="input" {...bind('name')} autoComplete="off" placeholder="e.g. GIMP" />
              </Field>
              <Field id={`${uid}-description`} label="Description" error={inlineError('description')} wide>
                <textarea className="input textarea" rows={2} {...bind('description')} />
              </Field>
              <Field id={`${uid}-category`} label="Category" hint="Pick one or type a new one." error={inlineError('category')}>
                <input className="input" {...bind('category')} list={`${uid}-categories`} autoComplete="off" placeholder="Other" />
                <datalist id={`${uid}-categories`}>
                  {categories.map((c) => (
                    <option key={c} value={c} />
                  ))}
                </datalist>
              </Field>
              <Field id={`${uid}-icon`} label="Icon URL" error={inlineError('icon')}>
                <div className="icon-input">
                  <input className="input" {...bind('icon')} autoComplete="off" spellCheck={false} placeholder="https://… (optional)" />
                  {(draft.name.trim() || draft.icon.trim()) && <AppIcon name={draft.name || '?'} src={draft.icon.trim()} />}
                </div>
              </Field>
              <Field id={`${uid}-visibility`} label="Who can launch it" hint={visibilityHelp[draft.visibility]} error={inlineError('visibility')} wide>
                <select className="input select" {...bind('visibility')}>
                  <option value="public">Everyone</option>
                  <option value="approved">Approved people</option>
                  <option value="admin_only">Administrators only</option>
                </select>
              </Field>
            </div>
          </fieldset>

          <fieldset className="form-section">
            <legend className="form-section__title">Launch</legend>
            <div className="form-grid">
              <Field id={`${uid}-launch_type`} label="Kind" error={inlineError('launch_type')} wide>
                <select className="input select" {...bind('launch_type')}>
                  <option value="container">Desktop app in a container</option>
                  <option value="url">Web link</option>
                </select>
              </Field>
              {!isContainer && (
                <Field id={`${uid}-url`} label="Address" hint="Opens in a new browser tab." error={inlineError('url')} wide>
                  <input className="input" type="url" {...bind('url')} autoComplete="off" spellCheck={false} placeholder="https://" />
                </Field>
              )}
              {isContainer && (
                <>
                  <Field id={`${uid}-container_image`} label="Container image" error={inlineError('container_image')} wide>
                    <input className="input input--mono" {...bind('container_image')} autoComplete="off" spellCheck={false} placeholder="e.g. registry.example.com/apps/gimp:2.10" />
                  </Field>
                  <Field
                    id={`${uid}-command`}
                    label="Command"
                    hint={<>Optional; replaces the image’s own command. Separate arguments with spaces and quote those that hold spaces: <code>xterm -T "My terminal"</code></>}
                    error={inlineError('command')}
                    wide
                  >
                    <input className="input input--mono" {...bind('command')} autoComplete="off" spellCheck={false} placeholder="Image default" />
                  </Field>
                  <Field
                    id={`${uid}-max_sessions`}
                    label="Sessions at once"
                    hint="Optional; launches over it wait in the queue and start as sessions of this app end."
                    error={inlineError('max_sessions')}
                  >
                    <input className="input" type="number" min={1} step={1} inputMode="numeric" {...bind('max_sessions')} placeholder="No limit" />
                  </Field>
                  <Field
                    id={`${uid}-warm_pool`}
                    label="Kept ready"
                    hint="Optional; this many sessions are started ahead, so a launch opens at once. They count toward the session limits."
                    error={inlineError('warm_pool')}
                  >
                    <input className="input" type="number" min={0} max={APP_WARM_POOL_LIMIT} step={1} inputMode="numeric" {...bind('warm_pool')} placeholder="None" />
                  </Field>
                  <Field id={`${uid}-file_transfer`} label="File transfer" hint={fileTransferHelp[draft.file_transfer]} error={inlineError('file_transfer')}>
                    <select className="input select" {...bind('file_transfer')}>
                      <option value="both">Upload and download</option>
                      <option value="upload">Upload only</option>
                      <option value="download">Download only</option>
                      <option value="none">None</option>
                    </select>
                  </Field>
                  <Field id={`${uid}-clipboard`} label="Clipboard" hint={clipboardHelp[draft.clipboard]} error={inlineError('clipboard')}>
                    <select className="input select" {...bind('clipboard')}>
                      <option value="both">Copy and paste</option>
                      <option value="to_session">Paste into the app only</option>
                      <option value="from_session">Copy out of the app only</option>
                      <option value="none">None</option>
                    </select>
                  </Field>
                  <Field id={`${uid}-recording`} label="Recording" hint={recordingHelp[draft.recording]} error={inlineError('recording')}>
                    <select className="input select" {...bind('recording')}>
                      <option value="off">Off</option>
                      <option value="always">Every session</option>
                      <option value="optional">When the person launching asks</option>
                    </select>
                  </Field>
                  <Field
                    id={`${uid}-persistent_home`}
                    label="Home folder"
                    hint={
                      draft.persistent_home
                        ? 'Each person’s files stay between sessions, shared by every app that keeps them.'
                        : 'A fresh home each session; what the app saves goes when the session ends.'
                    }
                    error={inlineError('persistent_home')}
                  >
                    <label className="checkbox">
                      <input
                        type="checkbox"
                        id={`${uid}-persistent_home`}
                        data-testid="app-form-persistent_home"
                        checked={draft.persistent_home}
                        onChange={(e) => set('persistent_home', e.target.checked)}
                      />{' '}
                      Keep each person’s home between sessions
                    </label>
                  </Field>
                </>
              )}
            </div>
          </fieldset>

          {isContainer && (
            <fieldset className="form-section">
              <legend className="form-section__title">Resources</legend>
              <p className="form-section__hint">Leave a field empty to use the default shown in it.</p>
              <div className="form-grid form-grid--4">
                {LIMIT_FIELDS.map((field) => (
                  <Field key={field} id={`${uid}-${field}`} label={limitLabels[field]} error={inlineError(field)}>
                    <input className="input input--mono" {...bind(field)} autoComplete="off" spellCheck={false} placeholder={DEFAULT_RESOURCE_LIMITS[field]} />
                  </Field>
                ))}
              </div>
            </fieldset>
          )}
        </div>
        <DialogFooter
          error={formError}
          errorTestId="app-form-error"
          saving={saving}
          saveLabel={isNew ? 'Add app' : 'Save changes'}
          saveTestId="app-form-save"
          onCancel={onCancel}
          cancelTestId="app-form-cancel"
        />
      </form>
    </Modal>
  );
}
