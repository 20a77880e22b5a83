export * from './cifar.js';
export * from './dataset.js';
export * from './fashion-mnist.js';
export * from './idx.js';
export * from './image-folder.js';
export * from './market1501.js';
export * from './samplers.js';
export * from './transforms.js';
