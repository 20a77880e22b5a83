// Registers every shape rule (side-effect imports).
import './elementwise.js';
import './nn.js';
import './tensor.js';
import './resample.js';
import './einsum.js';
