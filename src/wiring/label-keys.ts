/**
 * The label keys dockcni reads and sets, with nothing else in the module: the runtime's Node half and
 * bin/dockcni-runtime (which looks for NETWORKS_LABEL in a container's config, checked by a unit test)
 * name them without loading the label parser.
 */
export const LABEL_PREFIX = 'dockcni.';
export const NETWORKS_LABEL = 'dockcni.networks';
/**
 * Labels dockcni itself puts on `run` sandboxes and apps, for people reading `docker ps`. dockcni never
 * acts on them: anyone can set them, so which sandbox belongs to which app is in dockcni's records.
 */
export const ROLE_LABEL = 'dockcni.role';
export const SANDBOX_LABEL = 'dockcni.sandbox';
/** Set by docker-compose on each service's containers: peers reach a service by this name. */
export const COMPOSE_SERVICE_LABEL = 'com.docker.compose.service';
export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
