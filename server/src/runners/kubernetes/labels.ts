/** The labels and annotations on what Sortie creates in the cluster: session pods and home claims. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_SESSION_ID = 'sortie.io/session-id';
export const LABEL_APP_ID = 'sortie.io/app-id';
export const ANNOTATION_USER_ID = 'sortie.io/user-id';
export const ANNOTATION_APP_NAME = 'sortie.io/app-name';

/** Selects exactly the pods Sortie owns: the watch, the list and reconciliation use it. */
export const SESSION_POD_SELECTOR = `${LABEL_MANAGED_BY}=sortie,${LABEL_COMPONENT}=session`;
/** Selects exactly the claims Sortie made for homes. */
export const HOME_CLAIM_SELECTOR = `${LABEL_MANAGED_BY}=sortie,${LABEL_COMPONENT}=home`;
