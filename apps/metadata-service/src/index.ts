export { ConfigError, configWarnings, loadConfig, type ServiceConfig } from './config/config';
