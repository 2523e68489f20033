"""Built-in layer kinds. Importing this package registers them."""
from . import (activation, attention, bidirectional, dense, dropout, elu, embedding, gru, input, lstm,  # noqa: F401
               merge, relu, softmax, normalization, one_hot, reshaping, conv, conv2d, leaky_relu, dot, dot_attention,
               mask_ops, masking, pooling, set_mask, simple_rnn, text_vectorization, time_distributed)
